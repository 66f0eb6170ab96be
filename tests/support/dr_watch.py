"""One automatic-failover trial on real parts, shared by bench/dr/ and the slow test.

A primary and a synchronous standby (throwaway clusters), writers that record every
acknowledged write (id, time, which server acknowledged it), two real `auth-service dr watch`
processes (quorum 2) on a local store; then the primary's postmaster gets SIGKILL and the trial
records when the observers noticed, when one took the lock, the failover's steps, when the URL
file changed and when the first write was acknowledged by the new primary, and finally which
acknowledged writes the new primary lacks (none, in synchronous mode).

The writers stand for a service deployed with `--url-file` (docs/operations/disaster-recovery.md):
on a failed write they reconnect to whatever URL the file holds. A real service reads that file
at start (restart-required), so its own restart adds to the end-to-end time measured here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from auth_service.backup import pgtools
from auth_service.backup.storage import open_storage
from auth_service.config.backup import BackupDestination, DrSettings
from auth_service.dr.auto import OBSERVATIONS, FailoverRecord, Observation, read_lock
from auth_service.dr.service import DrService, create_standby
from tests.support.pg_cluster import BIN, clean_env, create_database, require_postgres_binaries
from tests.support.settings import TEST_MASTER_KEY, write_config
from tests.support.wait import async_wait_for

T = TypeVar("T")
OBSERVERS = ("observer-1", "observer-2")
TABLE = "dr_watch_writes"


def port_picker(spec: str | None) -> Callable[[], int]:
    """Ports for the clusters: the first free one in ``spec`` ("55430-55449"), else any."""
    if not spec:
        return pgtools.free_port
    low, high = (int(p) for p in spec.split("-"))
    taken: set[int] = set()

    def pick() -> int:
        for port in range(low, high + 1):
            if port in taken:
                continue
            with socket.socket() as s, contextlib.suppress(OSError):
                s.bind(("127.0.0.1", port))
                taken.add(port)
                return port
        raise RuntimeError(f"no free port in {spec}")

    return pick


@dataclass(frozen=True)
class Ack:
    id: int
    at: float  # wall clock (time.time()), comparable with the observers' timestamps
    port: int  # the server that acknowledged it


class Writers:
    """WORKERS connections inserting one row per transaction; each acknowledged commit is
    recorded. On any error a writer drops its connection and reconnects to the URL in the
    file, as a service repointed by `dr watch --url-file` would."""

    def __init__(self, url_file: Path, workers: int = 4) -> None:
        self.url_file = url_file
        self.workers = workers
        self.acked: list[Ack] = []
        self.failed = 0
        self._ids = itertools.count(1)
        self._stop = asyncio.Event()
        self._repointed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _follow(self) -> None:
        """When the URL file changes, abandon what is in flight: a service repointed in
        process drops its old pool (dr/repoint.py), one that restarts on the change drops it
        with the process. Without this a writer would sit out its timeout on a hung primary."""
        url = self.url_file.read_text()
        while not self._stop.is_set():
            await asyncio.sleep(0.01)
            now = self.url_file.read_text()
            if now != url:
                url = now
                self._repointed.set()
                self._repointed = asyncio.Event()

    async def _race(self, work: Awaitable[T]) -> T:
        """``work``, unless the URL file changes first or it takes over 10 s (TimeoutError)."""
        task = asyncio.ensure_future(work)
        repointed = asyncio.ensure_future(self._repointed.wait())
        done, _ = await asyncio.wait(
            {task, repointed}, timeout=10, return_when=asyncio.FIRST_COMPLETED
        )
        repointed.cancel()
        if task in done:
            return task.result()
        task.cancel()
        raise TimeoutError("repointed or timed out")

    async def _connect(self) -> tuple[asyncpg.Connection, int]:
        info = pgtools.ConnInfo.from_url(self.url_file.read_text().strip())
        conn = await self._race(asyncpg.connect(info.asyncpg_dsn(), timeout=10))
        return conn, info.port

    async def _worker(self) -> None:
        conn: asyncpg.Connection | None = None
        port = 0
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn, port = await self._connect()
                n = next(self._ids)
                await self._race(conn.execute(f"INSERT INTO {TABLE} (id) VALUES ($1)", n))
                self.acked.append(Ack(n, time.time(), port))
            except Exception:  # any failure: not acknowledged, reconnect
                self.failed += 1
                if conn is not None:
                    conn.terminate()
                    conn = None
                await asyncio.sleep(0.02)
        if conn is not None:
            conn.terminate()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        self._tasks.append(asyncio.create_task(self._follow()))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def acked_on(self, port: int, after: float, count: int, within: float) -> None:
        def enough() -> bool:
            return sum(1 for a in self.acked if a.port == port and a.at > after) >= count

        await async_wait_for(enough, within, f"{count} writes acknowledged by :{port}", 0.02)


@dataclass
class Trial:
    """What one trial measured (seconds from the kill unless named otherwise)."""

    fault: str
    kill_delay: float
    window: float
    probe: float
    killed_at: float
    noticed: dict[str, float]  # observer -> its first failed probe
    lock: FailoverRecord
    url_file_changed: float
    first_ack_new: float
    acked: int
    acked_old_after_kill: int
    last_ack_old: float
    lost: list[int]
    failed_writes: int
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def t_detect(self) -> float:
        """Death to the promotion decision (the lock taken)."""
        return self.lock.taken_at.timestamp() - self.killed_at

    def step(self, name: str) -> float:
        return sum(s for n, s in self.lock.steps if n.strip() == name)

    @property
    def t_failover(self) -> float:
        """Lock taken to the failover's outcome written (checks, fence attempt, promote,
        repoint, test write)."""
        assert self.lock.finished_at is not None
        return (self.lock.finished_at - self.lock.taken_at).total_seconds()

    @property
    def end_to_end(self) -> float:
        return self.first_ack_new - self.killed_at

    def figures(self) -> dict[str, Any]:
        noticed = sorted(self.noticed.values()) or [float("nan")]
        return {
            "fault": self.fault,
            "kill_delay_s": round(self.kill_delay, 3),
            "window_s": self.window,
            "probe_s": self.probe,
            # Kill to the first failed probe, of the first and of the last observer to notice.
            "t_notice_s": round(noticed[0], 3),
            "t_notice_last_s": round(noticed[-1], 3),
            "t_detect_s": round(self.t_detect, 3),
            "t_promote_s": round(self.step("promote standby"), 3),
            "t_repoint_s": round(self.step("repoint services"), 3),
            "t_failover_s": round(self.t_failover, 3),
            "t_url_file_s": round(self.url_file_changed, 3),
            "end_to_end_s": round(self.end_to_end, 3),
            "end_to_end_minus_window_s": round(self.end_to_end - self.window, 3),
            "acked": self.acked,
            # Commits in flight at the kill: orphaned backends finish them (their WAL is on the
            # synchronous standby already) until they notice the postmaster's death.
            "acked_by_old_after_kill": self.acked_old_after_kill,
            "last_ack_by_old_s": round(self.last_ack_old, 3),
            "lost": len(self.lost),
            "failed_writes": self.failed_writes,
            "steps": [[n.strip(), s] for n, s in self.lock.steps],
        }


def _postmaster(cluster: pgtools.Cluster) -> int:
    return int((cluster.data_dir / "postmaster.pid").read_text().splitlines()[0])


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'.
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _fault(cluster: pgtools.Cluster, fault: str) -> tuple[float, list[int]]:
    """Break the primary; returns when, and the processes frozen (to thaw at the end).

    kill: SIGKILL the postmaster (no shutdown, no checkpoint; the port refuses at once).
    freeze: SIGSTOP the postmaster and every backend, like a hung host: connections to the port
    are accepted by the kernel and then get no answer, so every probe waits its timeout.
    """
    pid = _postmaster(cluster)
    if fault == "kill":
        at = time.time()
        os.kill(pid, signal.SIGKILL)
        return at, []
    frozen = [pid, *_children(pid)]
    at = time.time()
    for p in frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGSTOP)
    return at, frozen


def _thaw_dead(frozen: list[int]) -> None:
    """Kill what a freeze stopped, so that the cluster can be removed."""
    for p in frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
            os.kill(p, signal.SIGCONT)


async def start_watcher(
    config: Path, name: str, url_file: Path, *extra: str
) -> asyncio.subprocess.Process:
    """A real `auth-service dr watch` process, its output (stdout and stderr) on a pipe."""
    return await asyncio.create_subprocess_exec(
        str(BIN / "auth-service"),
        "--config",
        str(config),
        "dr",
        "watch",
        "--observer-id",
        name,
        "--url-file",
        str(url_file),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=clean_env(),
    )


async def _collect(proc: asyncio.subprocess.Process, lines: list[str]) -> None:
    assert proc.stdout is not None
    async for line in proc.stdout:
        lines.append(f"{time.time():.3f} {line.decode()}")


async def run_trial(
    work: Path,
    *,
    window: float,
    probe: float,
    ttl: float | None = None,
    pick_port: Callable[[], int] = pgtools.free_port,
    prefix: str = "auth-drw-",
    warmup_acks: int = 50,
    fault: str = "kill",
    kill_delay: float | None = None,
) -> Trial:
    """One failover: set up, break the primary (``fault``: kill or freeze), wait for writes on
    the new primary, verify. The fault comes ``kill_delay`` seconds after the warm-up writes
    (default: random within one probe interval, so the probes' phase varies between trials)."""
    require_postgres_binaries()
    work.mkdir(parents=True, exist_ok=True)
    a = pgtools.Cluster(pgtools.Cluster.new_root(prefix + "a-"), pick_port())
    b = pgtools.Cluster(pgtools.Cluster.new_root(prefix + "b-"), pick_port())
    watchers: list[asyncio.subprocess.Process] = []
    readers: list[asyncio.Task[None]] = []
    said: dict[str, list[str]] = {name: [] for name in OBSERVERS}
    writers: Writers | None = None
    frozen: list[int] = []
    failed = False
    try:
        await a.initdb()
        await a.start()
        await create_database(a)
        conn = await a.connect("auth")
        try:
            await conn.execute(f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY)")
        finally:
            await conn.close()
        await create_standby(b, a.conninfo, "auth_dr_standby")
        a_info, b_info = (
            pgtools.ConnInfo("127.0.0.1", c.port, "postgres", None, "auth") for c in (a, b)
        )
        dr = DrSettings(synchronous=True)
        await DrService(a_info, b_info, dr).require_sync(a_info)

        async def sync_standby() -> bool:
            conn = await a.connect()
            try:
                return bool(
                    await conn.fetchval(
                        "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
                    )
                )
            finally:
                await conn.close()

        await async_wait_for(sync_standby, 60, "the standby to stream synchronously", 0.1)

        store_url = f"file://{work / 'dr-store'}"
        url_file = work / "database-url"
        url_file.write_text(a_info.sqlalchemy_url() + "\n")
        config = write_config(
            work / "config.yaml",
            {
                "data_dir": str(work / "data"),
                "master_key": TEST_MASTER_KEY,
                "database": {"url": a_info.sqlalchemy_url()},
                "dr": {
                    "standby_url": b_info.sqlalchemy_url(),
                    "synchronous": True,
                    "auto": {
                        "enabled": True,
                        "quorum": 2,
                        "unreachable_seconds": window,
                        "probe_interval_seconds": probe,
                        "observation_ttl_seconds": ttl if ttl is not None else window,
                        "store": {"url": store_url},
                    },
                },
            },
        )
        store = open_storage(BackupDestination(url=store_url))
        for name in OBSERVERS:
            proc = await start_watcher(config, name, url_file)
            watchers.append(proc)
            readers.append(asyncio.create_task(_collect(proc, said[name])))

        async def observations() -> dict[str, Observation]:
            found = {}
            for info in await store.list(OBSERVATIONS):
                o = Observation.from_json(await store.get_bytes(info.name))
                found[o.observer] = o
            return found

        async def both_see_the_primary() -> bool:
            seen = await observations()
            return len(seen) == 2 and all(o.primary_reachable for o in seen.values())

        await async_wait_for(both_see_the_primary, 90, "both observers to publish", 0.1)

        writers = Writers(url_file)
        writers.start()
        await writers.acked_on(a.port, 0.0, warmup_acks, 60)

        delay = random.uniform(0, probe) if kill_delay is None else kill_delay
        await asyncio.sleep(delay)
        killed_at, frozen = _fault(a, fault)

        async def decided() -> FailoverRecord | None:
            lock = await read_lock(store)
            return lock if lock is not None and lock.outcome != "running" else None

        lock = await async_wait_for(decided, window + 120, "the failover", 0.05)
        url_file_changed = url_file.stat().st_mtime - killed_at
        await writers.acked_on(b.port, killed_at, 20, 60)
        await writers.stop()
        _thaw_dead(frozen)
        seen = await observations()
        noticed = {
            name: o.unreachable_since.timestamp() - killed_at
            for name, o in seen.items()
            if o.unreachable_since is not None
        }
        conn = await asyncpg.connect(b_info.asyncpg_dsn(), timeout=10)
        try:
            on_b = {r["id"] for r in await conn.fetch(f"SELECT id FROM {TABLE}")}
        finally:
            await conn.close()
        acked = writers.acked
        old = [x for x in acked if x.port == a.port]
        new = sorted(x.at for x in acked if x.port == b.port and x.at > killed_at)
        return Trial(
            fault=fault,
            kill_delay=delay,
            window=window,
            probe=probe,
            killed_at=killed_at,
            noticed=noticed,
            lock=lock,
            url_file_changed=url_file_changed,
            first_ack_new=new[0],
            acked=len(acked),
            acked_old_after_kill=sum(1 for x in old if x.at > killed_at),
            last_ack_old=max(x.at for x in old) - killed_at,
            lost=sorted(x.id for x in acked if x.id not in on_b),
            failed_writes=writers.failed,
            outputs={name: "".join(lines) for name, lines in said.items()},
        )
    except BaseException:
        failed = True
        raise
    finally:
        _thaw_dead(frozen)
        if writers is not None:
            await writers.stop()
        for proc in watchers:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in watchers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 30)
            if proc.returncode is None:
                proc.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*readers), 30)
        if failed:
            # What the observers said (flushed at their exit) is the first thing to read.
            for name, lines in said.items():
                print(f"--- {name}\n{''.join(lines)}", file=sys.stderr)
        await b.destroy()
        await a.destroy()
