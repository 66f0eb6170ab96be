"""Observers that meet errors keep observing, and a failover is never left half-done (ADR 0326):
a probe that raises, a holder whose connection breaks after `pg_promote`, a holder that is gone
with its lock `running`. Each fails over exactly once, on real primary/standby pairs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from auth_service.backup import pgtools
from auth_service.backup.storage import open_storage
from auth_service.config.backup import BackupDestination, DrAutoSettings, DrSettings
from auth_service.dr import auto
from auth_service.dr.auto import LOCK, FailoverRecord, Observation, Watcher, decide, read_lock
from auth_service.dr.service import DrService, NodeStatus
from tests.integration.dr.support import FAST, node_info
from tests.support.wait import async_wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

NAMES = ("observer-1", "observer-2")


def _dr() -> DrSettings:
    return DrSettings(
        standby_url="postgresql://unused/auth",  # type: ignore[arg-type]
        auto=DrAutoSettings(**FAST),  # type: ignore[arg-type]
    )


class Quorum:
    """Two in-process watchers on one local store, each with what it said and repointed."""

    def __init__(self, tmp: Path, a: pgtools.Cluster, b: pgtools.Cluster) -> None:
        self.store = open_storage(BackupDestination(url=f"file://{tmp / 'store'}"))
        self.dr = _dr()
        self.said: dict[str, list[str]] = {name: [] for name in NAMES}
        self.repointed: list[str] = []
        self.watchers = [
            Watcher(
                DrService(node_info(a.port), node_info(b.port), self.dr),
                self.store,
                self.dr,
                name,
                repoint=self._repoint,
                say=self.said[name].append,
            )
            for name in NAMES
        ]

    async def _repoint(self, url: str) -> None:
        self.repointed.append(url)

    async def run_until_decided(self, within: float = 25) -> FailoverRecord:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop)) for w in self.watchers]

        async def decided() -> FailoverRecord | None:
            for task in tasks:
                if task.done():  # an observer left its loop: the bug this file is about
                    task.result()
                    raise AssertionError(f"an observer stopped: {self.said}")
            lock = await read_lock(self.store)
            return lock if lock is not None and lock.outcome != "running" else None

        try:
            return await async_wait_for(decided, within, "the failover's outcome", 0.05)
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    def heard(self, words: str) -> list[str]:
        return [line for lines in self.said.values() for line in lines if words in line]


async def _timeline(port: int) -> tuple[bool, int]:
    conn = await asyncpg.connect(node_info(port).asyncpg_dsn(), timeout=10)
    try:
        return (
            bool(await conn.fetchval("SELECT pg_is_in_recovery()")),
            int(await conn.fetchval("SELECT timeline_id FROM pg_control_checkpoint()")),
        )
    finally:
        await conn.close()


async def _both_publish(quorum: Quorum) -> None:
    """Both watchers have seen the primary once (so that the later outage is timed)."""
    for w in quorum.watchers:
        await w.step()
    assert not await quorum.store.exists(LOCK)


def _counting(
    monkeypatch: pytest.MonkeyPatch, name: str, fault: Callable[[int], BaseException | None]
) -> list[int]:
    """Wrap DrService.<name>: call n runs it, then raises ``fault(n)`` if that is not None."""
    calls: list[int] = []
    real = getattr(DrService, name)

    async def wrapped(self: DrService, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(calls) + 1)
        result = await real(self, *args, **kwargs)
        exc = fault(len(calls))
        if exc is not None:
            raise exc
        return result

    monkeypatch.setattr(DrService, name, wrapped)
    return calls


async def test_probes_that_raise_leave_the_observers_observing(
    tmp_path: Path,
    pair: tuple[pgtools.Cluster, pgtools.Cluster],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = pair
    quorum = Quorum(tmp_path, a, b)
    await _both_publish(quorum)
    real_status = auto.node_status
    primary_probes = 0

    async def flaky(name: str, info: pgtools.ConnInfo, **kwargs: bool) -> NodeStatus:
        # What asyncpg 0.32 raised when a SIGKILL landed between a probe's statements (the
        # bench, bench/dr/README.md "Open"), then an error nobody anticipated.
        nonlocal primary_probes
        if name == "primary":
            primary_probes += 1
            if primary_probes in (1, 2):
                raise asyncpg.InternalClientError(
                    "cannot switch to state 12; another operation (2) is in progress"
                )
            if primary_probes == 3:
                raise RuntimeError("injected: a bug in a probe")
        return await real_status(name, info, **kwargs)

    monkeypatch.setattr(auto, "node_status", flaky)
    promotions = _counting(monkeypatch, "promote", lambda _: None)
    await a.stop("immediate")

    lock = await quorum.run_until_decided()

    assert lock.outcome == "success", (lock, quorum.said)
    assert quorum.heard("observer round failed, still observing: RuntimeError: injected")
    assert promotions == [1]
    assert await _timeline(b.port) == (False, 2)
    assert quorum.repointed == [node_info(b.port).sqlalchemy_url()]


async def test_a_holder_whose_connection_breaks_after_the_promotion_finishes_it_once(
    tmp_path: Path,
    pair: tuple[pgtools.Cluster, pgtools.Cluster],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = pair
    quorum = Quorum(tmp_path, a, b)
    await _both_publish(quorum)
    # pg_promote went through, its answer did not: the error asyncpg gives a connection closed
    # under it. Before the fix it escaped _fail_over and left the lock `running`.
    promotions = _counting(
        monkeypatch,
        "promote",
        lambda n: asyncpg.InterfaceError("injected: connection lost") if n == 1 else None,
    )
    await a.stop("immediate")

    lock = await quorum.run_until_decided()

    assert lock.outcome == "success", (lock, quorum.said)
    assert lock.generation == 1
    assert [name for name, _ in lock.steps] == [
        "check standby",
        "finish promotion",
        "repoint services",
        "verify test write",
    ]
    assert quorum.heard("failover attempt 1 lost its connection (InterfaceError: injected")
    assert promotions == [1]  # the retry finished it; it did not promote again
    assert await _timeline(b.port) == (False, 2)
    assert quorum.repointed == [node_info(b.port).sqlalchemy_url()]
    assert len(quorum.heard("automatic failover done")) == 1


async def test_a_holder_that_raises_anything_records_a_failed_outcome(
    tmp_path: Path,
    pair: tuple[pgtools.Cluster, pgtools.Cluster],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = pair
    quorum = Quorum(tmp_path, a, b)
    await _both_publish(quorum)
    _counting(monkeypatch, "test_write", lambda _: KeyError("injected: a bug"))
    await a.stop("immediate")

    lock = await quorum.run_until_decided()

    assert lock.outcome == "failed"  # not `running`: an operator sees what happened
    assert lock.error == "KeyError: 'injected: a bug'"
    assert quorum.heard("automatic failover failed: KeyError")


async def test_the_quorum_takes_over_the_lock_of_a_holder_gone_after_promoting(
    tmp_path: Path,
    pair: tuple[pgtools.Cluster, pgtools.Cluster],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = pair
    quorum = Quorum(tmp_path, a, b)
    await _both_publish(quorum)
    await a.stop("immediate")
    # observer-0 took the lock, promoted the standby and died (kill -9) before the repoint, the
    # test write and the outcome: its lock says `running` and is renewed no more.
    await DrService(node_info(a.port), node_info(b.port), quorum.dr).promote(node_info(b.port))
    gone = datetime.now(UTC) - timedelta(seconds=30)
    held = FailoverRecord(
        "observer-0", gone, "a", "b", "test", ["observer-0", "observer-1"], lease_seconds=4.0
    )
    held.renewed_at = gone
    assert await quorum.store.put_new(LOCK, held.to_json())
    promotions = _counting(monkeypatch, "promote", lambda _: None)

    lock = await quorum.run_until_decided()

    assert lock.outcome == "success", (lock, quorum.said)
    assert lock.generation == 2
    assert lock.takes_over == "observer-0"
    assert lock.observer in NAMES
    assert "the standby is promoted already" in lock.reason
    assert [name for name, _ in lock.steps][1] == "finish promotion"
    assert promotions == []
    assert await _timeline(b.port) == (False, 2)
    assert quorum.repointed == [node_info(b.port).sqlalchemy_url()]
    assert len(quorum.heard("took over the abandoned failover lock of observer-0")) == 1
    # The first lock stays, as the history: only `dr rearm` removes both.
    first = FailoverRecord.from_json(await quorum.store.get_bytes(LOCK))
    assert first.observer == "observer-0"
    assert first.outcome == "running"
    assert await auto.rearm(quorum.store) == lock
    assert await read_lock(quorum.store) is None
    assert not await quorum.store.list(auto.TAKEOVERS)


async def test_a_renewed_or_leaseless_running_lock_is_never_taken_over(
    tmp_path: Path, pair: tuple[pgtools.Cluster, pgtools.Cluster]
) -> None:
    a, b = pair
    quorum = Quorum(tmp_path, a, b)
    await _both_publish(quorum)
    await a.stop("immediate")
    now = datetime.now(UTC)
    # Written by an observer before ADR 0326: no lease, so only an operator may clear it.
    leaseless = FailoverRecord("observer-0", now - timedelta(hours=1), "a", "b", "test", [])
    # A holder still at work: renewed within its lease.
    renewed = FailoverRecord("observer-0", now, "a", "b", "test", [], lease_seconds=3600)
    renewed.renewed_at = now
    for held in (leaseless, renewed):
        assert await quorum.store.put_new(LOCK, held.to_json())
        for _ in range(int(2 / 0.25)):  # two windows of probes
            for w in quorum.watchers:
                assert await w.step() == "stood down"
            await asyncio.sleep(0.25)
        assert await _timeline(b.port) == (True, 1)
        assert (await read_lock(quorum.store)) == held
        await auto.rearm(quorum.store)


async def test_an_observer_refused_by_a_node_stops_with_a_configuration_error(
    tmp_path: Path, pair: tuple[pgtools.Cluster, pgtools.Cluster]
) -> None:
    a, b = pair
    wrong = pgtools.ConnInfo("127.0.0.1", a.port, "postgres", None, "no_such_database")
    store = open_storage(BackupDestination(url=f"file://{tmp_path / 'store'}"))
    dr = _dr()
    said: list[str] = []
    watcher = Watcher(
        DrService(wrong, node_info(b.port), dr), store, dr, "observer-1", say=said.append
    )
    with pytest.raises(auto.DrConfigError, match=r"refuses this observer.*InvalidCatalogName"):
        await asyncio.wait_for(watcher.run(asyncio.Event()), 20)
    # It published nothing: a refusal is not an unreachable primary.
    assert not await store.list(auto.OBSERVATIONS)


def _observation(name: str, now: datetime, *, promoted: bool) -> Observation:
    return Observation(
        observer=name,
        at=now,
        primary="a:5432",
        standby="b:5432",
        primary_reachable=False,
        unreachable_since=now - timedelta(seconds=5),
        standby_reachable=True,
        standby_in_recovery=not promoted,
        standby_lag_bytes=None if promoted else 0,
    )


def test_only_a_takeover_finishes_a_promoted_standby_and_still_needs_the_quorum() -> None:
    now = datetime.now(UTC)
    settings = DrAutoSettings(**FAST)  # type: ignore[arg-type]
    both = [_observation(n, now, promoted=True) for n in NAMES]
    assert not decide(both, settings, 0, now).failover
    assert decide(both, settings, 0, now, takeover=True).failover
    assert not decide(both[:1], settings, 0, now, takeover=True).failover
    reaching = [both[0], Observation(**{**both[1].__dict__, "primary_reachable": True})]
    assert not decide(reaching, settings, 0, now, takeover=True).failover


def test_a_lock_is_abandoned_only_running_and_past_its_lease() -> None:
    now = datetime.now(UTC)
    record = FailoverRecord("o", now - timedelta(seconds=10), "a", "b", "r", [], lease_seconds=4)
    assert record.abandoned(now)
    record.renewed_at = now - timedelta(seconds=3)
    assert not record.abandoned(now)
    record.renewed_at = now - timedelta(seconds=5)
    assert record.abandoned(now)
    record.outcome = "failed"
    assert not record.abandoned(now)
    record.outcome, record.lease_seconds = "running", None
    assert not record.abandoned(now)
    assert FailoverRecord.from_json(record.to_json()) == record
