"""Disaster recovery on PostgreSQL's own streaming replication: status, failover (fence the
old primary, promote the standby, repoint, verify) and failback (pg_rewind the old primary into
a standby of the new one, catch up, switch over with zero loss).

We never build replication or consensus: promotion is ``pg_promote()``, rebuilding is
``pg_rewind`` (else ``pg_basebackup``), and at Kubernetes scale CloudNativePG/Patroni do this
instead (docs/operations/disaster-recovery.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from auth_service.backup import pgtools
from auth_service.backup.errors import ToolFailed
from auth_service.config.backup import DrSettings
from auth_service.observability import metrics

APPLICATION_NAME = "auth_standby"
Repoint = Callable[[str], Awaitable[None]]


class DrError(Exception):
    """A DR step refused or failed; the message says why and what to do."""


# A connection that broke under a step: refused, reset, timed out, or closed mid-query. asyncpg
# reports the last as ConnectionDoesNotExistError (an InterfaceError) or, when the server dies
# between a statement's prepare and its execution, as InternalClientError ("cannot switch to
# state 12; another operation (2) is in progress", seen with SIGKILLed primaries).
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
)
# What a node can answer a probe with, short of a bug: lost, or refused by the server.
NODE_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_LOST, asyncpg.PostgresError)
# The server answers, and refuses these credentials or this database: a configuration error,
# not an outage (an observer must not count it as the primary being unreachable).
REFUSALS: tuple[type[BaseException], ...] = (
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
)


@dataclass
class NodeStatus:
    name: str
    address: str
    reachable: bool = False
    role: str = "unreachable"
    lsn: str | None = None
    timeline: int | None = None
    read_only: bool = False
    replicas: list[dict[str, Any]] = field(default_factory=list)
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class StepTimer:
    steps: list[tuple[str, float]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @contextlib.asynccontextmanager
    async def step(self, name: str) -> Any:
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.steps.append((name, time.monotonic() - t0))

    @property
    def total(self) -> float:
        return time.monotonic() - self.started


@dataclass
class DrReport(StepTimer):
    """A finished failover or failback: the time of each step and what its audit event says.

    Nodes are host:port, never URLs (those carry passwords).
    """

    old_primary: str = ""
    new_primary: str = ""
    # Failover: WAL the standby had not replayed when it was promoted, as last measured (0 once
    # it replayed everything the fenced primary wrote; with an unreachable primary, what the
    # standby had received but not replayed, the rest is unknown). Failback: always 0.
    lag_bytes: int | None = None
    forced: bool = False
    fenced: bool = False

    def audit_details(self) -> dict[str, Any]:
        return {
            "old_primary": self.old_primary,
            "new_primary": self.new_primary,
            "lag_bytes": self.lag_bytes,
            "forced": self.forced,
            "old_primary_fenced": self.fenced,
            "steps": [[name.strip(), round(seconds, 3)] for name, seconds in self.steps],
            "seconds": round(sum(seconds for _, seconds in self.steps), 3),
        }


async def _connect(info: pgtools.ConnInfo, wait: float = 3) -> asyncpg.Connection:
    return await asyncpg.connect(info.asyncpg_dsn(), timeout=wait)


async def _close(conn: asyncpg.Connection) -> None:
    """Close politely, or drop a connection the server has lost: a failed close must not
    replace the step's own outcome or error."""
    try:
        await conn.close(timeout=3)
    except NODE_ERRORS:
        conn.terminate()


async def node_status(
    name: str, info: pgtools.ConnInfo, *, raise_refusals: bool = False
) -> NodeStatus:
    """What ``name`` answers; unreachable with the error when it does not. With
    ``raise_refusals`` a refusal of the credentials or database (REFUSALS) is raised."""
    status = NodeStatus(name, f"{info.host}:{info.port}")
    try:
        conn = await _connect(info)
    except NODE_ERRORS as exc:
        if raise_refusals and isinstance(exc, REFUSALS):
            raise
        status.error = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return status
    try:
        status.reachable = True
        in_recovery = await conn.fetchval("SELECT pg_is_in_recovery()")
        status.role = "standby" if in_recovery else "primary"
        status.read_only = await conn.fetchval("SHOW default_transaction_read_only") == "on"
        status.timeline = await conn.fetchval("SELECT timeline_id FROM pg_control_checkpoint()")
        if in_recovery:
            row = await conn.fetchrow(
                "SELECT pg_last_wal_replay_lsn()::text AS lsn, "
                "pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint "
                "AS pending, "
                "extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float AS age"
            )
            status.lsn = row["lsn"]
            status.lag_bytes = int(row["pending"] or 0)
            status.lag_seconds = row["age"]
        else:
            status.lsn = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
            rows = await conn.fetch(
                "SELECT application_name, state, sync_state, "
                "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS lag_bytes, "
                "extract(epoch FROM replay_lag)::float AS lag_seconds "
                "FROM pg_stat_replication"
            )
            status.replicas = [dict(r) for r in rows]
    finally:
        await _close(conn)
    return status


class DrService:
    """Operations across a primary (database.url) and its standby (dr.standby_url)."""

    def __init__(
        self, primary: pgtools.ConnInfo, standby: pgtools.ConnInfo, settings: DrSettings
    ) -> None:
        self.primary = primary
        self.standby = standby
        self.settings = settings

    async def status(self) -> dict[str, Any]:
        """Roles, LSNs, lag in bytes and seconds, sync state and timeline of both nodes."""
        a, b = await asyncio.gather(
            node_status("primary", self.primary), node_status("standby", self.standby)
        )
        for replica in a.replicas:
            if replica.get("lag_bytes") is not None:
                metrics.REPLICATION_LAG_BYTES.set(replica["lag_bytes"])
            if replica.get("lag_seconds") is not None:
                metrics.REPLICATION_LAG_SECONDS.set(replica["lag_seconds"])
        return {"nodes": [a.as_dict(), b.as_dict()]}

    async def fence(self, info: pgtools.ConnInfo) -> bool:
        """Make a reachable primary refuse writes and drop its clients; False if unreachable.

        Services still pointed at it turn unready (their database check sees read-only).
        """
        try:
            conn = await _connect(info)
        except NODE_ERRORS:
            return False
        try:
            await conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            await conn.execute("SELECT pg_reload_conf()")
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            return True
        finally:
            await _close(conn)

    async def _lsn(self, info: pgtools.ConnInfo, sql: str) -> int:
        conn = await _connect(info)
        try:
            return int(await conn.fetchval(f"SELECT pg_wal_lsn_diff(({sql}), '0/0')::bigint"))
        finally:
            await _close(conn)

    async def wait_replayed(
        self, source: pgtools.ConnInfo, target: pgtools.ConnInfo, within: float = 30
    ) -> None:
        """Wait until target has replayed everything source has written."""
        goal = await self._lsn(source, "SELECT pg_current_wal_lsn()")
        deadline = time.monotonic() + within
        while await self._lsn(target, "SELECT pg_last_wal_replay_lsn()") < goal:
            if time.monotonic() > deadline:
                raise DrError(
                    f"standby did not catch up within {within:.0f}s; retry or use --force"
                )
            await asyncio.sleep(0.05)

    async def failover(
        self,
        *,
        max_lag_bytes: int | None = None,
        force: bool = False,
        repoint: Repoint | None = None,
        primary_unreachable: bool = False,
        resume: bool = False,
    ) -> DrReport:
        """Promote the standby. Refuses when it is unhealthy or beyond the lag limit unless
        forced; fences the old primary first when it is reachable.

        ``primary_unreachable``: the caller has just seen the primary unreachable (the
        observers' quorum, for as long as the detection window): it is neither probed nor
        fenced again. Against a hung host each attempt would wait for the connect timeout
        (3 s twice, added to every automatic failover's downtime, bench/dr/README.md) only to
        fail as the probes did.

        ``resume``: this failover may already have promoted the standby (an attempt that lost
        its connection after ``pg_promote``, or a lock holder that is gone, ADR 0326). A standby
        found out of recovery is then not refused but finished: its post-promotion settings,
        the repoint and the test write; it is never promoted twice.
        """
        timer = DrReport(
            old_primary=f"{self.primary.host}:{self.primary.port}",
            new_primary=f"{self.standby.host}:{self.standby.port}",
            forced=force,
        )
        limit = self.settings.max_lag_bytes if max_lag_bytes is None else max_lag_bytes
        async with timer.step("check standby"):
            standby = await node_status("standby", self.standby)
            promoted = resume and standby.reachable and standby.role == "primary"
            if not promoted and (not standby.reachable or standby.role != "standby"):
                why = standby.error or "not in recovery"
                raise DrError(
                    f"standby {standby.address} is {standby.role} ({why}): nothing to promote"
                )
            if primary_unreachable:
                primary = NodeStatus("primary", timer.old_primary, error="seen unreachable")
            else:
                primary = await node_status("primary", self.primary)
            if primary.reachable and primary.lsn and standby.lsn:
                lag = await self._lag_between(primary.lsn, standby.lsn)
            else:
                lag = standby.lag_bytes or 0
            if lag > limit and not force and not promoted:
                raise DrError(
                    f"standby is {lag} bytes behind (limit {limit}): failing over would lose "
                    "them; wait, raise --max-lag-bytes, or --force"
                )
        timer.lag_bytes = lag
        if not primary_unreachable:
            async with timer.step("fence old primary"):
                timer.fenced = await self.fence(self.primary)
        if timer.fenced:
            async with timer.step("wait for standby to replay"):
                try:
                    await self.wait_replayed(self.primary, self.standby, within=30)
                    timer.lag_bytes = 0
                except DrError:
                    if not force:
                        raise
                    timer.lag_bytes = await self._unreplayed(timer.lag_bytes)
        if promoted:
            async with timer.step("finish promotion"):
                await self.after_promotion(self.standby)
        else:
            async with timer.step("promote standby"):
                await self.promote(self.standby)
        if repoint is not None:
            async with timer.step("repoint services"):
                await repoint(self.standby.sqlalchemy_url())
        async with timer.step("verify test write"):
            await self.test_write(self.standby)
        return timer

    async def _unreplayed(self, last_known: int) -> int:
        """What the fenced primary wrote that the standby has not replayed (forced failover)."""
        try:
            written = await self._lsn(self.primary, "SELECT pg_current_wal_lsn()")
            replayed = await self._lsn(self.standby, "SELECT pg_last_wal_replay_lsn()")
        except NODE_ERRORS:
            return last_known
        return max(0, written - replayed)

    async def _lag_between(self, ahead: str, behind: str) -> int:
        conn = await _connect(self.standby)
        try:
            return max(
                0,
                int(
                    await conn.fetchval(
                        "SELECT pg_wal_lsn_diff($1::text::pg_lsn, $2::text::pg_lsn)", ahead, behind
                    )
                ),
            )
        finally:
            await _close(conn)

    async def promote(self, info: pgtools.ConnInfo) -> None:
        conn = await _connect(info)
        try:
            ok = await conn.fetchval("SELECT pg_promote(true, 60)")
            if not ok:
                raise DrError(f"{info.host}:{info.port} did not promote within 60s")
            await self._after_promotion(conn)
        finally:
            await _close(conn)

    async def after_promotion(self, info: pgtools.ConnInfo) -> None:
        """What follows ``pg_promote`` on the new primary; safe to repeat."""
        conn = await _connect(info)
        try:
            await self._after_promotion(conn)
        finally:
            await _close(conn)

    @staticmethod
    async def _after_promotion(conn: asyncpg.Connection) -> None:
        # A promoted node has no standby yet: waiting for a synchronous one would hang
        # every commit. Failback sets it again once a standby streams.
        # pg_rewind reads the timeline from the control file, which only a checkpoint
        # after promotion updates (pg_rewind docs).
        await conn.execute("CHECKPOINT")
        await conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
        await conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
        await conn.execute("SELECT pg_reload_conf()")

    async def test_write(self, info: pgtools.ConnInfo) -> None:
        conn = await _connect(info, wait=10)
        try:
            async with conn.transaction():
                await conn.execute("CREATE TEMP TABLE dr_probe (x int) ON COMMIT DROP")
                await conn.execute("INSERT INTO dr_probe VALUES (1)")
            await conn.execute("SELECT txid_current()")
        finally:
            await _close(conn)

    async def failback(
        self,
        original: pgtools.Cluster,
        current: pgtools.Cluster,
        *,
        repoint: Repoint | None = None,
        within: float = 120,
    ) -> DrReport:
        """Give the original primary its role back after a failover, losing nothing.

        ``original`` (the old primary, now fenced or down) is rewound into a standby of
        ``current``; once it has caught up, ``current`` is fenced, ``original`` replays the
        last WAL and is promoted, and ``current`` is rewound into its standby again.
        """
        # Zero loss by construction: the original replays the last WAL before its promotion.
        timer = DrReport(
            old_primary=f"{self.standby.host}:{self.standby.port}",
            new_primary=f"{self.primary.host}:{self.primary.port}",
            lag_bytes=0,
            fenced=True,
        )
        slot = self.settings.slot_name
        async with timer.step("rebuild old primary as standby"):
            method = await rejoin_as_standby(original, current.conninfo, slot)
            timer.steps.append((f"  via {method}", 0.0))
        async with timer.step("catch up"):
            try:
                await self.wait_replayed(current.conninfo, original.conninfo, within=within)
            except DrError as exc:
                raise DrError(f"{exc}; its log: {original.log_tail()}") from None
        async with timer.step("fence current primary"):
            await self.fence(current.conninfo)
        async with timer.step("wait for last WAL"):
            await self.wait_replayed(current.conninfo, original.conninfo, within=within)
        async with timer.step("promote original primary"):
            await self.promote(original.conninfo)
        if repoint is not None:
            async with timer.step("repoint services"):
                await repoint(self.primary.sqlalchemy_url())
        async with timer.step("verify test write"):
            await self.test_write(original.conninfo)
        async with timer.step("rebuild standby"):
            await rejoin_as_standby(current, original.conninfo, slot)
        await drop_slot(current.conninfo, slot)
        if self.settings.synchronous:
            async with timer.step("require synchronous standby"):
                await self.require_sync(original.conninfo)
        return timer

    async def require_sync(self, primary: pgtools.ConnInfo) -> None:
        conn = await _connect(primary)
        try:
            await conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{APPLICATION_NAME}'")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await _close(conn)


# ---- building standbys -----------------------------------------------------------------------

_MANAGED = (
    "primary_conninfo",
    "primary_slot_name",
    "default_transaction_read_only",
    "synchronous_standby_names",
    "restore_command",
    "recovery_target_time",
    "recovery_target_action",
)


def _standby_conf(data_dir: Path, primary: pgtools.ConnInfo, slot: str) -> None:
    conf = data_dir / "postgresql.auto.conf"
    lines = [
        line
        for line in (conf.read_text().splitlines() if conf.exists() else [])
        if not line.strip().startswith(_MANAGED)
    ]
    conninfo = f"{primary.libpq()} application_name={APPLICATION_NAME}"
    lines += [f"primary_conninfo = '{conninfo}'", f"primary_slot_name = '{slot}'"]
    conf.write_text("\n".join(lines) + "\n")
    (data_dir / "standby.signal").touch()


async def ensure_slot(primary: pgtools.ConnInfo, slot: str) -> None:
    conn = await _connect(primary)
    try:
        exists = await conn.fetchval(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", slot
        )
        if not exists:
            await conn.execute("SELECT pg_create_physical_replication_slot($1, true)", slot)
    finally:
        await _close(conn)


async def drop_slot(info: pgtools.ConnInfo, slot: str) -> None:
    with contextlib.suppress(*NODE_ERRORS):
        conn = await _connect(info)
        try:
            await conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = $1 AND NOT active",
                slot,
            )
        finally:
            await _close(conn)


async def create_standby(cluster: pgtools.Cluster, primary: pgtools.ConnInfo, slot: str) -> None:
    """A fresh standby from a base backup of the primary (first setup, or when pg_rewind
    cannot rewind)."""
    await ensure_slot(primary, slot)
    cluster.data_dir.mkdir(parents=True, exist_ok=True)
    cluster.data_dir.chmod(0o700)
    pgtools.chown_to_server_user(cluster.root)
    await pgtools.run(
        pgtools.as_server_user(
            [
                pgtools.tool("pg_basebackup", cluster.bin_dir),
                "-d",
                primary.libpq(),
                "-D",
                str(cluster.data_dir),
                "-X",
                "stream",
                "--checkpoint=fast",
            ]
        ),
        env=primary.env(),
    )
    await asyncio.to_thread(_standby_conf, cluster.data_dir, primary, slot)
    pgtools.chown_to_server_user(cluster.data_dir)
    await cluster.start()
    await cluster.wait_ready(primary=False)


async def rejoin_as_standby(
    cluster: pgtools.Cluster, new_primary: pgtools.ConnInfo, slot: str
) -> str:
    """Turn a former primary into a standby of the new one: pg_rewind, else a fresh base
    backup. Returns which was used."""
    with contextlib.suppress(ToolFailed):
        await cluster.stop("fast")
    await ensure_slot(new_primary, slot)
    method = "pg_rewind"
    try:
        await pgtools.run(
            pgtools.as_server_user(
                [
                    pgtools.tool("pg_rewind", cluster.bin_dir),
                    "--target-pgdata",
                    str(cluster.data_dir),
                    "--source-server",
                    new_primary.libpq(),
                ]
            ),
            env=new_primary.env(),
        )
    except ToolFailed as exc:
        method = f"pg_basebackup (pg_rewind: {str(exc)[:200]})"
        await asyncio.to_thread(_wipe, cluster.data_dir)
        await create_standby(cluster, new_primary, slot)
        return method
    await asyncio.to_thread(_standby_conf, cluster.data_dir, new_primary, slot)
    pgtools.chown_to_server_user(cluster.data_dir)
    await cluster.start()
    await cluster.wait_ready(primary=False)
    return method


def _wipe(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
