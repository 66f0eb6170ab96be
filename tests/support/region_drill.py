"""The region-loss drill (docs/operations/region-loss.md), shared by the CI test
(tests/integration/backup/test_region_loss.py, 10,000 users) and the bench
(bench/backup/bench_backup.py region-loss, 1,000,000 users).

Region A holds the primary PostgreSQL cluster, the WAL streamer and the primary backup
destination; the service writes every backup object and WAL segment to the DR-region
destination too (a second entry in ``backup.destinations``, ADR 0320). While a writer commits a
known sequence of users, region A is lost at once: the streamer and the cluster are killed, the
cluster's directory and the region-A destination are deleted. A new cluster is restored from
the DR copy alone with ``backup restore --to-end`` (recovery to the last archived WAL), the real
``auth-service serve`` starts on it and users sign in over HTTP.

Every acknowledged write carries the WAL position before it was sent and the flushed position
after its acknowledgement, so the drill can say for each one whether its commit record lies
before the end of the archived WAL (it must survive), after it (it cannot), or across it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from argon2 import PasswordHasher

from auth_service.backup import pgtools
from auth_service.backup.catalog import WAL, Catalog
from auth_service.config.backup import BackupSettings
from tests.support.pg_cluster import acli, create_database, start_cli
from tests.support.server import Server, base_env
from tests.support.settings import TEST_MASTER_KEY, write_config

PASSWORD = "Tr0ub4dor&3-horse"
SEGMENT_BYTES = 16 * 1024 * 1024  # initdb's default WAL segment size
DRILL_EMAIL = "drill-{n:06d}@example.com"


@dataclass(frozen=True)
class Write:
    """One acknowledged registration: WAL insert position before, flushed position after."""

    n: int
    email: str
    before: int
    after: int
    acked_at: float


@dataclass
class Figures:
    users: int
    seed_seconds: float = 0.0
    backup_seconds: float = 0.0
    acked: int = 0
    lost: int = 0
    archived_segments: int = 0
    archive_end: str = ""
    unarchived_wal_bytes: int = 0
    unarchived_segments: int = 0
    loss_window_seconds: float = 0.0
    restore_seconds: float = 0.0
    serve_seconds: float = 0.0
    restored_users: int = 0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"FIGURES region-loss users={self.users}: restore {self.restore_seconds:.1f}s "
            f"(backup restore --to-end, to PostgreSQL promoted), service serving "
            f"{self.serve_seconds:.1f}s later; acknowledged writes {self.acked}, lost "
            f"{self.lost} (the last {self.loss_window_seconds:.2f}s before the loss); WAL not "
            f"archived: {self.unarchived_segments} segments after {self.archive_end} "
            f"({self.unarchived_wal_bytes} bytes of positions, switch padding included; "
            f"{self.archived_segments} segments archived); seed {self.seed_seconds:.1f}s, "
            f"full backup {self.backup_seconds:.1f}s"
        )


def segment_start(name: str) -> int:
    """The WAL position where segment ``name`` (TTTTTTTTXXXXXXXXYYYYYYYY) begins."""
    return int(name[8:16], 16) * 0x1_0000_0000 + int(name[16:24], 16) * SEGMENT_BYTES


async def archive_end(catalog: Catalog) -> tuple[int, str, int]:
    """End of the archived WAL, read from a destination as recovery will: the segments whose
    upload finished (checksum present) without a gap after the first. Returns (position,
    last segment, segments)."""
    names = sorted(
        (n for n in await catalog.wal_names() if len(n) == 24),
        key=lambda n: (n[8:], n[:8]),
    )
    complete = [n for n in names if await catalog.primary.exists(f"{WAL}/{n}.sha256")]
    if not complete:
        raise AssertionError(f"no WAL segment archived in {catalog.primary.url}")
    # The base backup starts past the first; recovery reads on from there without a gap.
    last = complete[0]
    for name in complete[1:]:
        if segment_start(name) != segment_start(last) + SEGMENT_BYTES:
            break
        last = name
    return segment_start(last) + SEGMENT_BYTES, last, len(complete)


def recovery_end(data_dir: Path, timeline: int) -> int:
    """The position where the previous timeline ends, from the new timeline's history file
    (``1\t0/5000000\tno recovery target specified``)."""
    history = data_dir / "pg_wal" / f"{timeline:08X}.history"
    last = history.read_text().strip().splitlines()[-1]
    return lsn(last.split()[1])


def lsn(text: str) -> int:
    return pgtools.lsn_bytes(text)


class Writer:
    """One client committing users in sequence until the database goes away."""

    def __init__(self, dsn: str, password_hash: str) -> None:
        self.dsn = dsn
        self.password_hash = password_hash
        self.acked: list[Write] = []
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        tenant = await conn.fetchval("SELECT id FROM tenants ORDER BY created_at LIMIT 1")
        n = 0
        try:
            while True:
                email = DRILL_EMAIL.format(n=n)
                before = await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text")
                await conn.execute(
                    """INSERT INTO users (id, tenant_id, email, password_hash, status,
                        email_verified_at, created_at, updated_at)
                    VALUES (gen_random_uuid(), $1, $2, $3, 'active', now(), now(), now())""",
                    tenant,
                    email,
                    self.password_hash,
                )
                # synchronous_commit: the commit record is flushed before the acknowledgement.
                after = await conn.fetchval("SELECT pg_current_wal_flush_lsn()::text")
                self.acked.append(Write(n, email, lsn(before), lsn(after), time.monotonic()))
                n += 1
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self.error = type(exc).__name__
        finally:
            with contextlib.suppress(Exception):
                conn.terminate()

    async def _switch(self) -> None:
        """Close the WAL segment every second, as a busy database fills one (16 MiB)."""
        conn = await asyncpg.connect(self.dsn)
        try:
            while True:
                await asyncio.sleep(1)
                await conn.execute("SELECT pg_switch_wal()")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return
        finally:
            with contextlib.suppress(Exception):
                conn.terminate()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        self._ticker = asyncio.create_task(self._switch())

    async def stopped(self) -> None:
        assert self._task is not None
        await asyncio.wait_for(asyncio.gather(self._task, self._ticker), 60)


async def _seed(conn: asyncpg.Connection, users: int, password_hash: str) -> None:
    """Bulk: one INSERT ... SELECT (the users import path hashes per user; not what's tested)."""
    await conn.execute(
        """INSERT INTO users (id, tenant_id, email, name, password_hash, status,
            email_verified_at, created_at, updated_at)
        SELECT gen_random_uuid(), (SELECT id FROM tenants ORDER BY created_at LIMIT 1),
            'user' || g || '@example.com', 'User ' || g, $1, 'active', now(), now(), now()
        FROM generate_series(1, $2::int) g""",
        password_hash,
        users,
    )
    await conn.execute("VACUUM ANALYZE users")


def _config(path: Path, data_dir: Path, url: str, key: str, stores: list[Path]) -> Path:
    return write_config(
        path,
        {
            "data_dir": str(data_dir),
            "master_key": TEST_MASTER_KEY,
            "database": {"url": url},
            "backup": {"key": key, "destinations": [{"url": f"file://{s}"} for s in stores]},
        },
    )


async def _wait_for(check: Callable[[], Any], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {within:.0f}s")
        await asyncio.sleep(0.2)


async def _wal_stream(config: Path) -> asyncio.subprocess.Process:
    """`backup wal-stream` in its own process group (killpg takes its pg_receivewal too),
    its output in wal-stream.log beside the config."""
    with config.with_name("wal-stream.log").open("ab") as log:
        return await start_cli(
            config,
            "backup",
            "wal-stream",
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )


def _ok(code: int, out: str, what: str) -> str:
    assert code == 0, f"{what} failed ({code}): {out[-3000:]}"
    return out


async def run_drill(
    work: Path,
    users: int,
    *,
    prefix: str = "auth-drill-",
    ports: tuple[int, int] | None = None,
    write_seconds: float = 6.0,
    say: Callable[[str], None] = print,
) -> Figures:
    """The whole drill; asserts what it proves and returns the figures.

    ``work`` holds region A's and the DR region's directories (file:// destinations, config,
    service data); ``ports`` for the two clusters (default: free ones).
    """
    figures = Figures(users)
    region_a, region_dr = work / "region-a", work / "region-dr"
    for d in (region_a, region_dr):
        d.mkdir(parents=True)
    key = secrets.token_urlsafe(32)
    # A cheap argon2id hash, as the test servers are configured (base_env); the service
    # verifies any argon2id parameters.
    password_hash = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    port_a, port_new = ports or (pgtools.free_port(), pgtools.free_port())

    primary = pgtools.Cluster(pgtools.Cluster.new_root(f"{prefix}a-"), port_a)
    restored = pgtools.Cluster(pgtools.Cluster.new_root(f"{prefix}new-"), port_new)
    streamer: asyncio.subprocess.Process | None = None
    try:
        await primary.initdb()
        await primary.start()
        url = await create_database(primary)
        conn = await primary.connect("auth")
        t0 = time.monotonic()
        try:
            await _seed(conn, users, password_hash)
        finally:
            await conn.close()
        figures.seed_seconds = time.monotonic() - t0
        say(f"seeded {users} users in {figures.seed_seconds:.1f}s")

        # Region A's service configuration: the primary-region destination first, the DR
        # region's copy second (every object and WAL segment is written to both).
        config_a = _config(
            region_a / "config.yaml",
            region_a / "data",
            url,
            key,
            [region_a / "backups", region_dr / "backups"],
        )
        streamer = await _wal_stream(config_a)
        t0 = time.monotonic()
        _ok(*(await acli(config_a, "backup", "run", "--kind", "full")), "backup run")
        figures.backup_seconds = time.monotonic() - t0
        say(f"full backup in {figures.backup_seconds:.1f}s")

        dr_catalog = Catalog(
            BackupSettings.model_validate(
                {"key": key, "destinations": [{"url": f"file://{region_dr / 'backups'}"}]}
            ),
            work,
        )
        writer = Writer(primary.conninfo.asyncpg_dsn("auth"), password_hash)
        writer.start()
        started = time.monotonic()
        # Writes go on for write_seconds and until the DR copy holds WAL with some of them.
        while True:
            await asyncio.sleep(0.5)
            if writer.error is not None:
                raise AssertionError(f"the writer stopped: {writer.error}")
            if time.monotonic() - started < write_seconds or not writer.acked:
                continue
            with contextlib.suppress(AssertionError):  # nothing archived yet
                end, _, _ = await archive_end(dr_catalog)
                if end > writer.acked[0].after:
                    break
            if time.monotonic() - started > write_seconds + 60:
                raise AssertionError("no write archived in the DR copy after 60 s")

        # ---- region A is lost, all at once ----------------------------------------------
        lost_at = time.monotonic()
        assert streamer.pid is not None
        os.killpg(streamer.pid, signal.SIGKILL)
        await streamer.wait()
        streamer = None
        await primary.stop("immediate")
        await writer.stopped()
        await primary.destroy()  # the cluster's directory is gone
        shutil.rmtree(region_a)  # and so is the primary-region backup destination
        assert not primary.root.exists()
        assert not region_a.exists()
        acked = writer.acked
        figures.acked = len(acked)
        say(f"region A lost after {len(acked)} acknowledged writes ({writer.error})")

        # ---- the DR region --------------------------------------------------------------
        dr_dir = region_dr / "service"
        dr_dir.mkdir()
        config_dr = _config(
            dr_dir / "config.yaml",
            dr_dir / "data",
            restored.conninfo.sqlalchemy_url("auth"),
            key,
            [region_dr / "backups"],
        )
        listed = json.loads(
            _ok(*(await acli(config_dr, "backup", "list", "--format", "json")), "list")
        )
        full = [b for b in listed if b["kind"] == "full"]
        assert full, listed
        end, last_segment, segments = await archive_end(dr_catalog)
        figures.archive_end, figures.archived_segments = last_segment, segments

        t0 = time.monotonic()
        out = _ok(
            *(
                await acli(
                    config_dr,
                    "backup",
                    "restore",
                    "--to-end",
                    "--stage-wal",
                    "--target",
                    str(restored.data_dir),
                    "--start-port",
                    str(restored.port),
                    timeout=900,
                )
            ),
            "backup restore --to-end",
        )
        figures.restore_seconds = time.monotonic() - t0
        assert f"restored base backup {full[-1]['id']}" in out, out
        say(f"restored in {figures.restore_seconds:.1f}s: {out.strip()}")

        conn = await restored.connect("auth")
        try:
            present = {
                r["email"]
                for r in await conn.fetch("SELECT email FROM users WHERE email LIKE 'drill-%'")
            }
            figures.restored_users = await conn.fetchval(
                "SELECT count(*) FROM users WHERE email LIKE 'user%@example.com'"
            )
            wal_file = await conn.fetchval("SELECT pg_walfile_name(pg_current_wal_lsn())")
        finally:
            await conn.close()
        assert figures.restored_users == users
        timeline = int(wal_file[:8], 16)
        assert timeline > 1, "recovery ends by promoting onto a new timeline"
        # Where recovery left timeline 1: the end of the WAL it could replay.
        replayed = recovery_end(restored.data_dir, timeline)
        # It replayed every archived segment (the last one up to its last whole record, all of
        # it when the segment was closed by a switch), nothing beyond: the archive ends there.
        assert end - SEGMENT_BYTES < replayed <= end, (
            f"recovery ended at {replayed:X}, the archive at {end:X} ({last_segment})"
        )

        # ---- what was lost, and that it is exactly the unarchived WAL ---------------------
        lost = [w for w in acked if w.email not in present]
        figures.lost = len(lost)
        must_survive = [w for w in acked if w.after <= replayed]
        cannot_survive = [w for w in acked if w.before >= replayed]
        assert must_survive, "no acknowledged write before the end of the archive"
        missing = [w.n for w in must_survive if w.email not in present]
        assert not missing, f"writes inside the archived WAL are missing: {missing[:10]}"
        appeared = [w.n for w in cannot_survive if w.email in present]
        assert not appeared, f"writes past the archived WAL came back: {appeared[:10]}"
        # One writer, in order: what survives is a prefix of what was acknowledged.
        assert [w.n for w in acked if w.email in present] == list(range(len(acked) - len(lost)))
        newest = max(w.after for w in acked)
        figures.unarchived_wal_bytes = max(0, newest - replayed)
        # Segments holding acknowledged WAL that never reached the DR copy (the last one open).
        figures.unarchived_segments = (newest - 1) // SEGMENT_BYTES - (end - 1) // SEGMENT_BYTES
        figures.loss_window_seconds = lost_at - lost[0].acked_at if lost else 0.0

        # ---- the service serves from the new cluster ---------------------------------------
        t0 = time.monotonic()
        env = base_env(dr_dir, restored.conninfo.sqlalchemy_url("auth"))
        server = Server(dr_dir, env)
        await asyncio.to_thread(server.start, 120)
        try:
            kept = [w.email for w in acked if w.email in present]
            probes = [f"user{users}@example.com", *(kept[-1:])]
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                for email in probes:
                    r = await client.post(
                        "/v1/auth/login", json={"email": email, "password": PASSWORD}
                    )
                    assert r.status_code == 200, (email, r.status_code, r.text)
                    assert r.json()["access_token"]
                if lost:
                    r = await client.post(
                        "/v1/auth/login", json={"email": lost[0].email, "password": PASSWORD}
                    )
                    assert r.status_code == 401, (r.status_code, r.text)
            figures.serve_seconds = time.monotonic() - t0
        finally:
            await asyncio.to_thread(server.stop)

        # ---- back to a protected state: WAL archiving and a base backup of the new cluster -
        streamer = await _wal_stream(config_dr)
        out = _ok(*(await acli(config_dr, "backup", "run", "--kind", "full")), "backup run (DR)")
        say(out.strip())
        new_segment = f"{timeline:08X}"

        async def new_timeline_archived() -> bool:
            names = await dr_catalog.wal_names()
            if any(n.startswith(new_segment) and len(n) == 24 for n in names):
                return True
            # Close a segment with something in it once the streamer is reading.
            conn = await restored.connect("auth")
            try:
                await conn.execute(
                    "UPDATE users SET updated_at = now() WHERE email = $1", probes[0]
                )
                await conn.execute("SELECT pg_switch_wal()")
            finally:
                await conn.close()
            await asyncio.sleep(1)
            return False

        log = config_dr.with_name("wal-stream.log")
        try:
            await _wait_for(new_timeline_archived, 60, f"WAL of timeline {timeline} archived")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; wal-stream: {log.read_text()[-2000:]}") from None
        streamer.send_signal(signal.SIGTERM)
        await asyncio.wait_for(streamer.wait(), 60)
        assert streamer.returncode == 0, log.read_text()[-2000:]
        streamer = None
        say(figures.line())
        return figures
    finally:
        if streamer is not None and streamer.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(streamer.pid, signal.SIGKILL)
            await streamer.wait()
        await restored.destroy()
        await primary.destroy()
