"""Purging what the service no longer needs, table by table, in small batches.

Each batch is ONE short statement in its own transaction: ``DELETE ... WHERE pk IN (SELECT
pk ... WHERE <past retention> LIMIT n)``. On PostgreSQL the sub-select takes its rows ``FOR
UPDATE SKIP LOCKED``: a row a request holds right now is left for the next run instead of
making the purge (and the request queued behind it) wait. On SQLite every batch is one
``BEGIN IMMEDIATE`` writer turn of a few milliseconds. A pause between batches gives request
traffic the database.

What is kept, and why (ADR 0910):

- a session's refresh-token chain lives as long as the session: a spent token presented
  again must be found to be recognised as reuse and revoke the session (RFC 9700 4.14.2).
  Only sessions that ended (revoked, past their absolute expiry, or idle past the idle
  lifetime) ``housekeeping.session_retention_days`` ago go, their chain first;
- an authorization code stays until it expired (``housekeeping.token_retention_hours``
  ago): a code exchanged twice within its lifetime still revokes what it issued; a device
  code (RFC 8628) likewise;
- a revoked access token's ``jti`` stays until the token itself expired (plus clock skew);
- audit events stay ``audit.retention_days``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import ColumnElement, delete, func, or_, select

from auth_service.accounts.models import OneTimeToken
from auth_service.audit.models import AuditEvent
from auth_service.config.settings import Settings
from auth_service.db.base import utcnow
from auth_service.db.engine import Backend, Database
from auth_service.flows.models import FlowRow
from auth_service.jobs.models import JobRow
from auth_service.jobs.upkeep import finished_jobs
from auth_service.oauth.models import AuthorizationCode, DeviceCode, RevokedAccessToken
from auth_service.observability import metrics
from auth_service.privacy.deletion import AccountDeletion
from auth_service.sessions.models import RefreshToken, Session

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
# The report's and the metric's name for accounts erased after their deletion grace period.
ERASED_ACCOUNTS = "users"
Progress = Callable[[str, int], None]
"""Told after every batch: the table, and the rows purged from it so far in this run."""
Archive = Callable[[str, bytes], Awaitable[None]]
"""Stores one archive object (name, JSON lines) durably, or raises: the rows in it are deleted
only after it returns (``audit.archive``; the backup package provides it)."""
ARCHIVE_ROWS = 10_000  # audit events per archive object


@dataclass(frozen=True)
class Target:
    """A table and the rows of it that are past their retention at ``now``."""

    table: str
    model: Any  # a mapped class
    key: Any  # its primary key column (single-column)
    expired: Callable[[datetime], ColumnElement[bool]]


@dataclass(frozen=True)
class TableResult:
    table: str
    rows: int  # purged, or (dry run) that would be
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "rows": self.rows, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class Report:
    dry_run: bool
    started_at: datetime
    tables: list[TableResult]

    @property
    def total(self) -> int:
        return sum(t.rows for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "started_at": self.started_at.isoformat(),
            "total": self.total,
            "tables": [t.as_dict() for t in self.tables],
        }


class Housekeeping:
    """One run over every table (``run``); the same rules count what a run would delete."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Clock = utcnow,
        deletion: AccountDeletion | None = None,
    ) -> None:
        self._db = db
        self.settings = settings
        self.clock = clock
        # Accounts whose self-service deletion is due are erased first (docs/privacy.md).
        self._deletion = deletion
        # Set by the processes that can write to the backup destinations (audit.archive).
        self.archive: Archive | None = None
        for table in [ERASED_ACCOUNTS, *(t.table for t in self.targets())]:
            # Every table's series exists from the first scrape, at 0.
            metrics.HOUSEKEEPING_ROWS_PURGED.labels(table)

    def apply_settings(self, settings: Settings) -> None:
        self.settings = settings

    # ---- the rules ------------------------------------------------------------------------

    def _session_ended(self, now: datetime) -> ColumnElement[bool]:
        hk, tokens = self.settings.housekeeping, self.settings.tokens
        cutoff = now - timedelta(days=hk.session_retention_days)
        idle = timedelta(seconds=tokens.refresh_idle_ttl_seconds)
        return or_(
            Session.revoked_at < cutoff,
            Session.expires_at < cutoff,
            Session.last_used_at < cutoff - idle,
        )

    def _token_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(hours=self.settings.housekeeping.token_retention_hours)

    def targets(self) -> list[Target]:
        """Every table housekeeping purges, in the order a run takes them (a session's
        refresh tokens before the session, so no cascade deletes an unbounded chain)."""
        settings = self.settings
        skew = timedelta(seconds=settings.tokens.clock_skew_seconds)
        return [
            Target(
                "refresh_tokens",
                RefreshToken,
                RefreshToken.id,
                lambda now: RefreshToken.session_id.in_(
                    select(Session.id).where(self._session_ended(now))
                ),
            ),
            Target("sessions", Session, Session.id, self._session_ended),
            Target(
                "one_time_tokens",
                OneTimeToken,
                OneTimeToken.id,
                lambda now: or_(
                    OneTimeToken.expires_at < self._token_cutoff(now),
                    OneTimeToken.used_at < self._token_cutoff(now),
                ),
            ),
            Target(
                "oauth_authorization_codes",
                AuthorizationCode,
                AuthorizationCode.id,
                lambda now: AuthorizationCode.expires_at < self._token_cutoff(now),
            ),
            Target(
                "oauth_device_codes",
                DeviceCode,
                DeviceCode.id,
                lambda now: DeviceCode.expires_at < self._token_cutoff(now),
            ),
            Target(
                "oauth_revoked_access_tokens",
                RevokedAccessToken,
                RevokedAccessToken.jti,
                lambda now: RevokedAccessToken.expires_at < now - skew,
            ),
            Target(
                "flows",
                FlowRow,
                FlowRow.id,
                lambda now: FlowRow.expires_at < self._token_cutoff(now),
            ),
            Target("jobs", JobRow, JobRow.id, lambda now: finished_jobs(now, settings.jobs)),
            Target(
                "audit_events",
                AuditEvent,
                AuditEvent.id,
                lambda now: (
                    AuditEvent.occurred_at < now - timedelta(days=settings.audit.retention_days)
                ),
            ),
        ]

    # ---- running --------------------------------------------------------------------------

    async def run(self, *, dry_run: bool = False, progress: Progress | None = None) -> Report:
        """Purge every table (``dry_run``: count what would go and delete nothing). ``now`` is
        taken once, so a run is one consistent cut."""
        now = self.clock()
        results = []
        if self._deletion is not None:
            results.append(await self._erase_accounts(now, dry_run=dry_run, progress=progress))
        for target in self.targets():
            started = time.perf_counter()
            if dry_run:
                rows = await self.count(target, now)
                if progress is not None:
                    progress(target.table, rows)
            elif target.model is AuditEvent and self.settings.audit.archive:
                rows = await self.archive_and_purge(target, now, progress)
            else:
                rows = await self.purge(target, now, progress)
            results.append(TableResult(target.table, rows, time.perf_counter() - started))
        report = Report(dry_run, now, results)
        if not dry_run:
            log.info(
                "housekeeping_done",
                total=report.total,
                **{r.table: r.rows for r in results if r.rows},
            )
            await self.sample()
        return report

    async def _erase_accounts(
        self, now: datetime, *, dry_run: bool, progress: Progress | None
    ) -> TableResult:
        assert self._deletion is not None
        started = time.perf_counter()
        if dry_run:
            rows = len(await self._deletion.due(now, limit=1_000_000))
        else:
            rows = (await self._deletion.erase_due(now)).accounts
            metrics.HOUSEKEEPING_ROWS_PURGED.labels(ERASED_ACCOUNTS).inc(rows)
        if progress is not None:
            progress(ERASED_ACCOUNTS, rows)
        return TableResult(ERASED_ACCOUNTS, rows, time.perf_counter() - started)

    async def count(self, target: Target, now: datetime) -> int:
        stmt = select(func.count()).select_from(target.model).where(target.expired(now))
        async with self._db.single() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def purge(self, target: Target, now: datetime, progress: Progress | None = None) -> int:
        """Delete the target's expired rows, ``housekeeping.batch_size`` per statement."""
        hk = self.settings.housekeeping
        total = 0
        while True:
            batch = select(target.key).where(target.expired(now)).limit(hk.batch_size)
            if self._db.backend is Backend.postgresql:
                batch = batch.with_for_update(skip_locked=True)
                stmt = delete(target.model).where(target.key.in_(batch.scalar_subquery()))
                async with self._db.single() as conn:
                    found = deleted = int((await conn.execute(stmt)).rowcount)
            else:
                # SQLite: the search (which may scan) is a read, outside the single writer's
                # turn; the write is a delete by primary key. A row past its retention stays
                # past it, so the keys read are still the ones to delete.
                async with self._db.single() as conn:
                    keys = list(await conn.scalars(batch))
                found, deleted = len(keys), 0
                if keys:
                    async with self._db.single() as conn:
                        stmt = delete(target.model).where(target.key.in_(keys))
                        deleted = int((await conn.execute(stmt)).rowcount)
            total += deleted
            metrics.HOUSEKEEPING_ROWS_PURGED.labels(target.table).inc(deleted)
            if progress is not None:
                progress(target.table, total)
            if found < hk.batch_size:
                return total
            if hk.batch_pause_seconds:
                await asyncio.sleep(hk.batch_pause_seconds)

    async def archive_and_purge(
        self, target: Target, now: datetime, progress: Progress | None = None
    ) -> int:
        """Audit events past retention, ARCHIVE_ROWS at a time: read them (oldest first),
        store them as one archive object, then delete exactly those rows in batches."""
        if self.archive is None:
            raise RuntimeError(
                "audit.archive is on but this process cannot write archives (no backup "
                "destinations attached): nothing was deleted"
            )
        hk = self.settings.housekeeping
        total = 0
        while True:
            stmt = (
                select(AuditEvent)
                .where(target.expired(now))
                .order_by(AuditEvent.occurred_at, AuditEvent.id)
                .limit(ARCHIVE_ROWS)
            )
            async with self._db.sessionmaker() as s:
                events = list((await s.scalars(stmt)).all())
            if not events:
                return total
            lines = b"".join(json.dumps(_event_record(e)).encode() + b"\n" for e in events)
            first = events[0].occurred_at.strftime("%Y%m%dT%H%M%SZ")
            await self.archive(f"audit-events-{first}-{uuid.uuid4().hex[:8]}.jsonl", lines)
            ids = [e.id for e in events]
            for start in range(0, len(ids), hk.batch_size):
                async with self._db.single() as conn:
                    stmt_delete = delete(AuditEvent).where(
                        AuditEvent.id.in_(ids[start : start + hk.batch_size])
                    )
                    deleted = int((await conn.execute(stmt_delete)).rowcount)
                total += deleted
                metrics.HOUSEKEEPING_ROWS_PURGED.labels(target.table).inc(deleted)
                if progress is not None:
                    progress(target.table, total)
                if hk.batch_pause_seconds:
                    await asyncio.sleep(hk.batch_pause_seconds)
            if len(events) < ARCHIVE_ROWS:
                return total

    async def sizes(self) -> dict[str, int]:
        """Rows per table housekeeping looks after."""
        found = {}
        async with self._db.single() as conn:
            for target in self.targets():
                stmt = select(func.count()).select_from(target.model)
                found[target.table] = int((await conn.execute(stmt)).scalar_one())
        return found

    async def sample(self) -> None:
        """Set the table size gauges."""
        for table, rows in (await self.sizes()).items():
            metrics.HOUSEKEEPING_TABLE_ROWS.labels(table).set(rows)


def _event_record(event: AuditEvent) -> dict[str, Any]:
    """One archived audit event, every column."""
    return {
        "id": str(event.id),
        "tenant_id": str(event.tenant_id),
        "occurred_at": event.occurred_at.isoformat(),
        "type": event.type,
        "outcome": event.outcome,
        "actor_user_id": str(event.actor_user_id) if event.actor_user_id else None,
        "subject_user_id": str(event.subject_user_id) if event.subject_user_id else None,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "details": event.details,
    }
