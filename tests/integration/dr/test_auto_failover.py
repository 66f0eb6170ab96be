"""Automatic failover on a real primary/standby pair: two observers agree and exactly one fails
over; a dissenting observer or a standby beyond the lag limit keeps everything as it is."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from auth_service.backup import pgtools
from auth_service.backup.storage import Storage, open_storage
from auth_service.config.backup import BackupDestination, DrAutoSettings, DrSettings
from auth_service.dr.auto import LOCK, OBSERVATIONS, Observation, Watcher, read_lock
from auth_service.dr.service import DrService, node_status
from tests.integration.dr.support import FAST, node_info
from tests.support.dr_watch import start_watcher
from tests.support.pg_cluster import acli
from tests.support.settings import TEST_MASTER_KEY, write_config
from tests.support.wait import async_wait_for

# Throwaway PostgreSQL clusters: the server binaries, not the shared test server.
pytestmark = [pytest.mark.slow, pytest.mark.postgres]


async def _until(what: str, check: Callable[[], Awaitable[bool]], within: float = 20) -> None:
    await async_wait_for(check, within, what, interval=0.1)


async def _collect(proc: asyncio.subprocess.Process, lines: list[str]) -> None:
    """Keep what a watcher says as it says it, so a test can wait for a line."""
    assert proc.stdout is not None
    async for line in proc.stdout:
        lines.append(line.decode())


async def _observations(store: Storage) -> dict[str, Observation]:
    found = {}
    for info in await store.list(OBSERVATIONS):
        o = Observation.from_json(await store.get_bytes(info.name))
        found[o.observer] = o
    return found


async def test_two_observers_agree_and_exactly_one_fails_over(
    tmp_path: Path, pair: tuple[pgtools.Cluster, pgtools.Cluster]
) -> None:
    a, b = pair
    store_url = f"file://{tmp_path / 'dr-store'}"
    url_file = tmp_path / "database-url"
    url_file.write_text(a.conninfo.sqlalchemy_url("auth"))
    config = write_config(
        tmp_path / "config.yaml",
        {
            "data_dir": str(tmp_path / "data"),
            "master_key": TEST_MASTER_KEY,
            "database": {"url": a.conninfo.sqlalchemy_url("auth")},
            "dr": {
                "standby_url": b.conninfo.sqlalchemy_url("auth"),
                "auto": {**FAST, "store": {"url": store_url}},
            },
        },
    )
    store = open_storage(BackupDestination(url=store_url))
    names = ("observer-1", "observer-2")
    ports = {name: pgtools.free_port() for name in names}
    watchers = [
        await start_watcher(config, name, url_file, "--metrics-port", str(ports[name]))
        for name in names
    ]
    said: dict[str, list[str]] = {name: [] for name in names}
    readers = [
        asyncio.create_task(_collect(proc, said[name]))
        for name, proc in zip(names, watchers, strict=True)
    ]
    try:

        async def both_see_the_primary() -> bool:
            seen = await _observations(store)
            return len(seen) == 2 and all(o.primary_reachable for o in seen.values())

        await _until("both observers publish", both_see_the_primary, within=30)
        await a.stop("immediate")

        async def promoted() -> bool:
            lock = await read_lock(store)
            return lock is not None and lock.outcome != "running"

        await _until("the failover", promoted)
        lock = await read_lock(store)
        assert lock is not None
        loser = next(name for name in names if name != lock.observer)

        async def loser_stood_down() -> bool:
            return any("standing down" in line for line in said[loser])

        await _until(f"{loser} to see the lock", loser_stood_down)
        async with httpx.AsyncClient(timeout=5) as client:
            scraped = {
                name: (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                for name, port in ports.items()
            }
    finally:
        for proc in watchers:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in watchers:
            await asyncio.wait_for(proc.wait(), 30)
        await asyncio.wait_for(asyncio.gather(*readers), 30)
    outputs = ["".join(said[name]) for name in names]
    for proc, out in zip(watchers, outputs, strict=True):
        assert proc.returncode == 0, out
        assert "Traceback" not in out

    lock = await read_lock(store)
    assert lock is not None
    assert lock.outcome == "success", lock
    assert lock.observer in ("observer-1", "observer-2")
    assert lock.agreeing == ["observer-1", "observer-2"]
    winner = names.index(lock.observer)
    assert 'auth_dr_auto_failovers_total{outcome="success"} 1.0' in scraped[lock.observer]
    assert 'auth_dr_auto_failovers_total{outcome="success"} 0.0' in scraped[names[1 - winner]]
    for name, text in scraped.items():
        assert f'auth_dr_observer_primary_reachable{{observer="{name}"}} 0.0' in text
        assert f'auth_dr_auto_enabled{{observer="{name}"}} 1.0' in text
        assert f'auth_dr_auto_quorum{{observer="{name}"}} 2.0' in text
    assert outputs[winner].count("automatic failover done") == 1, outputs[winner]
    loser = outputs[1 - winner]
    assert "failover done" not in loser
    assert "standing down" in loser, loser

    standby = await node_status("b", node_info(b.port))
    assert standby.role == "primary"
    assert not standby.read_only
    assert url_file.read_text().strip() == b.conninfo.sqlalchemy_url("auth")
    conn = await asyncpg.connect(node_info(b.port).asyncpg_dsn())
    try:
        rows = await conn.fetch("SELECT details FROM audit_events WHERE type = 'dr.auto_failover'")
    finally:
        await conn.close()
    assert len(rows) == 1
    details = rows[0]["details"]
    details = json.loads(details) if isinstance(details, str) else details
    assert details["observer"] == lock.observer
    assert details["new_primary"] == f"127.0.0.1:{b.port}"

    code, out = await acli(config, "dr", "rearm")
    assert code == 0, out
    assert f"removed the failover lock taken by {lock.observer}" in out
    assert not await store.exists(LOCK)


class Observers:
    """In-process watchers on one store, run for a while, with what each said."""

    def __init__(self, tmp: Path, dr: DrSettings) -> None:
        self.store = open_storage(BackupDestination(url=f"file://{tmp}"))
        self.dr = dr
        self.said: dict[str, list[str]] = {}
        self.watchers: list[Watcher] = []

    def add(self, name: str, primary: pgtools.ConnInfo, standby: pgtools.ConnInfo) -> None:
        said = self.said.setdefault(name, [])
        self.watchers.append(
            Watcher(
                DrService(primary, standby, self.dr), self.store, self.dr, name, say=said.append
            )
        )

    async def run_until(self, what: str, done: Callable[[], Awaitable[bool]]) -> None:
        """Run the watchers until ``done()`` holds: the event, not a duration."""
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop)) for w in self.watchers]
        try:
            await _until(what, done)
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    def said_it(self, name: str, words: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return any(words in line for line in self.said.get(name, []))

        return check


def _dr(**auto: Any) -> DrSettings:
    return DrSettings(
        standby_url="postgresql://unused/auth",  # type: ignore[arg-type]
        max_lag_bytes=auto.pop("max_lag_bytes", 16 * 1024 * 1024),
        auto=DrAutoSettings(**{**FAST, **auto}),
    )


async def test_no_failover_with_a_dissenter_or_beyond_the_lag_limit(
    tmp_path: Path, pair: tuple[pgtools.Cluster, pgtools.Cluster]
) -> None:
    a, b = pair
    a_info, b_info = node_info(a.port), node_info(b.port)

    # observer-2 is cut off from the primary (it probes a dead port); observer-1 reaches it.
    cut_off = Observers(tmp_path / "store-1", _dr())
    cut_off.add("observer-1", a_info, b_info)
    cut_off.add("observer-2", node_info(pgtools.free_port()), b_info)

    async def dissent_decided() -> bool:
        # observer-2 has seen the primary gone long enough to fail over, and refused: the
        # primary is reachable from observer-1.
        seen = await _observations(cut_off.store)
        heard = await cut_off.said_it("observer-2", "the primary is reachable from observer-1")()
        return heard and "observer-2" in seen and seen["observer-2"].down_for >= 1.0

    await cut_off.run_until("observer-2 to refuse after 1 s", dissent_decided)
    assert not await cut_off.store.exists(LOCK)
    assert (await node_status("b", b_info)).role == "standby"
    assert any("the primary is reachable from observer-1" in s for s in cut_off.said["observer-2"])
    assert (await _observations(cut_off.store))["observer-2"].down_for >= 1.0

    # The standby stops replaying while the primary writes: both observers measure the lag,
    # then the primary dies. They agree it is gone, and still nobody promotes.
    conn = await asyncpg.connect(b_info.asyncpg_dsn())
    try:
        await conn.execute("SELECT pg_wal_replay_pause()")
    finally:
        await conn.close()
    conn = await asyncpg.connect(a_info.asyncpg_dsn())
    try:
        await conn.execute(
            "CREATE TABLE filler AS SELECT g, repeat('x', 100) AS pad "
            "FROM generate_series(1, 2000) AS g"
        )
    finally:
        await conn.close()
    lagging = Observers(tmp_path / "store-2", _dr(max_lag_bytes=1024))
    lagging.add("observer-1", a_info, b_info)
    lagging.add("observer-2", a_info, b_info)

    async def both_measured_the_lag() -> bool:
        seen = await _observations(lagging.store)
        return len(seen) == 2 and all((o.standby_lag_bytes or 0) > 1024 for o in seen.values())

    await lagging.run_until("both observers to measure the lag", both_measured_the_lag)
    await a.stop("immediate")

    async def both_refused() -> bool:
        limit = "bytes behind (limit 1024)"
        return all([await lagging.said_it(n, limit)() for n in ("observer-1", "observer-2")])

    await lagging.run_until("both observers to refuse for the lag", both_refused)
    assert not await lagging.store.exists(LOCK)
    assert (await node_status("b", b_info)).role == "standby"
    for name in ("observer-1", "observer-2"):
        assert any("bytes behind (limit 1024)" in s for s in lagging.said[name]), lagging.said
