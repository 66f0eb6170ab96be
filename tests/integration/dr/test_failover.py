"""Failover and failback on real clusters, under a steady stream of registrations through the
running service (HTTP). Prints the figures: failover time and acknowledged writes lost."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from auth_service.app import create_app
from auth_service.backup import pgtools
from auth_service.config.backup import DrSettings
from auth_service.dr.repoint import repoint_database
from auth_service.dr.service import DrService, node_status
from auth_service.services import build_services
from tests.support.settings import make_settings
from tests.support.wait import async_wait_for

# Throwaway PostgreSQL clusters: the server binaries, not the shared test server.
pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PASSWORD = "Tr0ub4dor&3-horse"


class Load:
    """Registrations through HTTP, as fast as WORKERS clients go; remembers what was acked."""

    WORKERS = 4

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.acked: list[tuple[float, str]] = []
        self.failed = 0
        self._stop = asyncio.Event()
        self._n = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []

    async def _worker(self) -> None:
        while not self._stop.is_set():
            email = f"load-{next(self._n)}-{uuid.uuid4().hex[:6]}@example.com"
            try:
                r = await self.client.post(
                    "/v1/auth/register", json={"email": email, "password": PASSWORD}
                )
            except Exception:
                r = None
            if r is not None and r.status_code == 202:
                self.acked.append((time.monotonic(), email))
            else:
                self.failed += 1
                await asyncio.sleep(0.05)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.WORKERS)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def acked_after(self, t: float, count: int = 1, within: float = 60) -> float:
        """Wait until ``count`` registrations were acknowledged after ``t``; the first's time."""

        def first() -> float | None:
            after = sorted(ts for ts, _ in self.acked if ts > t)
            return after[0] if len(after) >= count else None

        found = await async_wait_for(first, within, f"{count} registrations acked", 0.01)
        assert found is not None
        return found


async def _emails(info: pgtools.ConnInfo) -> set[str]:
    conn = await asyncpg.connect(info.asyncpg_dsn("auth"))
    try:
        return {r["email"] for r in await conn.fetch("SELECT email FROM users")}
    finally:
        await conn.close()


@pytest.mark.parametrize("synchronous", [True, False], ids=["sync", "async"])
async def test_failover_under_load_then_failback(
    tmp_path: Path, pair: tuple[pgtools.Cluster, pgtools.Cluster], synchronous: bool
) -> None:
    a, b = pair
    a_info = pgtools.ConnInfo("127.0.0.1", a.port, "postgres", None, "auth")
    b_info = pgtools.ConnInfo("127.0.0.1", b.port, "postgres", None, "auth")
    dr_settings = DrSettings(synchronous=synchronous, max_lag_bytes=16 * 1024 * 1024)
    dr = DrService(a_info, b_info, dr_settings)
    if synchronous:
        await dr.require_sync(a_info)
    # Failed attempts during the outage count against rate limits too; this test measures the
    # database path, so the limiter is off.
    settings = make_settings(
        tmp_path,
        a_info.sqlalchemy_url(),
        database={"pool_timeout_seconds": 5},
        rate_limits={"enabled": False},
    )
    services = build_services(settings)
    app = create_app(settings, services)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", timeout=30
        ) as client:
            load = Load(client)
            load.start()
            await load.acked_after(0.0, count=20)
            status = await node_status("primary", a_info)
            assert status.replicas
            assert status.replicas[0]["sync_state"] == ("sync" if synchronous else "async")

            # Disaster: the primary dies mid-stream (immediate = no shutdown checkpoint).
            crashed_at = time.monotonic()
            await a.stop("immediate")
            timer = await dr.failover(repoint=lambda url: repoint_database(services, url))
            first_ok = await load.acked_after(timer.started + timer.total - 0.001, count=10)
            failover_seconds = first_ok - crashed_at
            acked_before_failback = {e for _, e in load.acked}
            on_b = await _emails(b_info)
            lost = acked_before_failback - on_b
            print(
                f"\nFIGURES {'sync' if synchronous else 'async'}: failover {failover_seconds:.2f}s "
                f"end to end, steps {[(n, round(s, 3)) for n, s in timer.steps]}, "
                f"acked {len(acked_before_failback)}, acked writes lost {len(lost)}, "
                f"failed requests {load.failed}"
            )
            # The documented targets (bench/backup/README.md): failover within 30 s, nothing
            # acknowledged lost with synchronous replication; with asynchronous replication only
            # what the old primary acknowledged within the replication lag before it died
            # (milliseconds on loopback: 5 s is far beyond it; it was dead once the failover
            # started).
            assert failover_seconds < 30
            if synchronous:
                assert lost == set()
            else:
                window = {e for ts, e in load.acked if crashed_at - 5 < ts <= timer.started}
                assert lost <= window

            # Failback to the original roles while the registrations keep coming.
            back = await dr.failback(a, b, repoint=lambda url: repoint_database(services, url))
            await load.acked_after(time.monotonic(), count=10)
            await load.stop()
            steps = [(n, round(s, 3)) for n, s in back.steps]
            print(f"FIGURES failback {back.total:.2f}s steps {steps}")

    acked = {e for _, e in load.acked}
    on_a = await _emails(a_info)
    # Zero loss in the switchover: everything acked while B was primary is on A.
    assert (acked - lost) <= on_a
    assert (await node_status("a", a_info)).role == "primary"
    assert (await node_status("b", b_info)).role == "standby"
    final = await node_status("a", a_info)
    assert final.replicas, "the old primary streams to the rebuilt standby"
