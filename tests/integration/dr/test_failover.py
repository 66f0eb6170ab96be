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
from auth_service.backup.settings import DrSettings
from auth_service.dr.repoint import repoint_database
from auth_service.dr.service import DrService, node_status
from auth_service.services import build_services
from tests.conftest import make_settings

pytestmark = pytest.mark.slow

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

    async def wait_for_success_after(self, t: float, within: float = 60) -> float:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            after = [ts for ts, _ in self.acked if ts > t]
            if after:
                return min(after)
            await asyncio.sleep(0.01)
        raise AssertionError("no registration succeeded after the failover")


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
            await asyncio.sleep(2.0)
            status = await node_status("primary", a_info)
            assert status.replicas
            assert status.replicas[0]["sync_state"] == ("sync" if synchronous else "async")

            # Disaster: the primary dies mid-stream (immediate = no shutdown checkpoint).
            crashed_at = time.monotonic()
            await a.stop("immediate")
            timer = await dr.failover(repoint=lambda url: repoint_database(services, url))
            first_ok = await load.wait_for_success_after(timer.started + timer.total - 0.001)
            failover_seconds = first_ok - crashed_at
            await asyncio.sleep(1.0)
            acked_before_failback = {e for _, e in load.acked}
            on_b = await _emails(b_info)
            lost = acked_before_failback - on_b
            print(
                f"\nFIGURES {'sync' if synchronous else 'async'}: failover {failover_seconds:.2f}s "
                f"end to end, steps {[(n, round(s, 3)) for n, s in timer.steps]}, "
                f"acked {len(acked_before_failback)}, acked writes lost {len(lost)}, "
                f"failed requests {load.failed}"
            )
            if synchronous:
                assert lost == set()

            # Failback to the original roles while the registrations keep coming.
            back = await dr.failback(a, b, repoint=lambda url: repoint_database(services, url))
            await asyncio.sleep(1.0)
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
