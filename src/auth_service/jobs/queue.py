"""The queue's statements: enqueue (inside the caller's transaction when it has one), claim,
renew the lease, finish. Workers (``jobs.worker``) drive them; operators use ``jobs.admin``.

Claiming is one UPDATE of the rows a sub-select picked: on PostgreSQL the sub-select locks
them ``FOR UPDATE SKIP LOCKED``, so concurrent workers of every replica take disjoint jobs
without waiting on each other; SQLite has one writer at a time (``BEGIN IMMEDIATE``,
db.engine), which serialises the same statement. Every later write of a claimed job is
fenced by (worker, attempt): a worker whose lease expired and was taken over can no longer
finish or fail the job it lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import (
    Insert,
    Select,
    Update,
    and_,
    case,
    event,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.config.settings import JobSettings
from auth_service.db.base import DEFAULT_TENANT_ID, utcnow
from auth_service.db.engine import Backend, Database
from auth_service.jobs.kinds import Job, JobKind, JobKinds, JobState, backoff_seconds
from auth_service.jobs.models import JobRow
from auth_service.observability import tracing
from auth_service.security.aead import MasterKey, MasterKeyError

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]

ERROR_CHARS = 500
_CLAIMED = (
    JobRow.id,
    JobRow.tenant_id,
    JobRow.kind,
    JobRow.key,
    JobRow.payload,
    JobRow.sealed,
    JobRow.attempts,
    JobRow.max_attempts,
    JobRow.created_at,
    JobRow.traceparent,
)


def _aad(job_id: uuid.UUID) -> bytes:
    # Binds a sealed payload to its row: copied into another job it does not open.
    return b"auth-service job payload\x00" + job_id.bytes


class JobQueue:
    """Enqueue and run durable jobs. ``register`` a kind before enqueueing it."""

    def __init__(
        self,
        db: Database,
        settings: JobSettings,
        master_key: MasterKey,
        *,
        clock: Clock = utcnow,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._db = db
        self.settings = settings
        self._key = master_key
        self.clock = clock
        self._rng = rng
        self.kinds = JobKinds()
        # Set when a job may have become claimable in this process (enqueued, retried, a
        # slot freed): the local worker looks at once instead of at its next poll.
        self._wake = asyncio.Event()

    def register(self, kind: JobKind) -> None:
        """Make a kind enqueueable, and runnable by this process's workers."""
        self.kinds.register(kind)

    def apply_settings(self, settings: JobSettings) -> None:
        self.settings = settings

    # ---- enqueue ----------------------------------------------------------------------------

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        key: str | None = None,
        session: AsyncSession | None = None,
        delay_seconds: float = 0.0,
        tenant_id: uuid.UUID = DEFAULT_TENANT_ID,
    ) -> uuid.UUID:
        """Add a job of ``kind`` and return its id.

        ``session``: the caller's transaction; the job then exists if and only if that
        transaction commits. ``key``: the idempotency key (up to 200 characters): while the
        table holds a job of this kind and key (until ``jobs.retention_hours`` after it
        finished), enqueueing it again returns that job and adds nothing. Without a key the
        job's id is its key. ``payload`` must be JSON; a sealed kind's is encrypted.
        """
        key, stmt = self._prepared(kind, payload, key, delay_seconds, tenant_id)
        existing = select(JobRow.id).where(
            JobRow.tenant_id == tenant_id, JobRow.kind == kind, JobRow.key == key
        )
        if session is not None:
            inserted = (await session.execute(stmt)).scalar_one_or_none()
            # The worker of this process looks once the caller's transaction commits.
            event.listen(session.sync_session, "after_commit", self._woken, once=True)
            return inserted or (await session.execute(existing)).scalar_one()
        async with self._db.single() as conn:
            inserted = (await conn.execute(stmt)).scalar_one_or_none()
            found = inserted or (await conn.execute(existing)).scalar_one()
        self.wake()
        return found

    def prepare(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        key: str | None = None,
        tenant_id: uuid.UUID = DEFAULT_TENANT_ID,
        decoy: bool = False,
    ) -> Insert:
        """The insert of a new job, for a caller that stores it with its own writes
        (``Database.write_together``): the job exists if and only if they commit. Call
        ``wake`` once they have. Enqueueing an existing key adds nothing, as ``enqueue``.

        ``decoy``: the same work and the same statement for a job that must never run (an
        answer must not tell whether there was anything to send, ADR 0011): it is stored as
        done, without its payload, and purged like any finished job.
        """
        return self._prepared(kind, payload, key, 0.0, tenant_id, decoy=decoy)[1]

    def prepare_each(
        self,
        kind: str,
        payload: dict[str, Any],
        keys: Select[Any],
        *,
        tenant_id: uuid.UUID = DEFAULT_TENANT_ID,
    ) -> Insert:
        """The insert of one job of ``kind`` per row of ``keys`` (a select of one column:
        each job's idempotency key), all with ``payload``: one statement, however many rows,
        for a caller that stores it with its own writes (``Database.write_together``; the
        webhook outbox fans an event out to its subscriptions). The keys must be new (ids
        of an event, say): this insert does not skip existing ones. Not for sealed kinds
        (a seal is bound to its job's id, which the database draws here)."""
        spec = self.kinds.get(kind)
        if spec.sealed:
            raise ValueError(f"job kind {kind!r} is sealed: enqueue its jobs one by one")
        now = self.clock()
        rows = keys.subquery("keys")
        col = JobRow.__table__.c
        new_id = (
            func.gen_random_uuid()
            if self._db.backend is Backend.postgresql
            # The 32 hex digits SQLAlchemy stores a UUID as on SQLite.
            else func.lower(func.hex(func.randomblob(16)))
        )
        values: dict[str, Any] = {
            "tenant_id": tenant_id,
            "kind": kind,
            "state": JobState.queued.value,
            "payload": payload,
            "sealed": None,
            "attempts": 0,
            "max_attempts": spec.max_attempts or self.settings.max_attempts,
            "run_at": now,
            "traceparent": tracing.current_traceparent(),
            "created_at": now,
            "updated_at": now,
            "finished_at": None,
        }
        columns = [
            new_id.label("id"),
            rows.c[0].label("key"),
            *(literal(v, col[name].type).label(name) for name, v in values.items()),
        ]
        return insert(JobRow).from_select(["id", "key", *values], select(*columns))

    def _prepared(
        self,
        kind: str,
        payload: dict[str, Any],
        key: str | None,
        delay_seconds: float,
        tenant_id: uuid.UUID,
        *,
        decoy: bool = False,
    ) -> tuple[str, Insert]:
        spec = self.kinds.get(kind)
        job_id = uuid.uuid4()
        key = key if key is not None else job_id.hex
        if not 0 < len(key) <= 200:
            raise ValueError("an idempotency key has 1 to 200 characters")
        now = self.clock()
        sealed = self._seal(job_id, payload) if spec.sealed else None
        values: dict[str, Any] = {
            "id": job_id,
            "tenant_id": tenant_id,
            "kind": kind,
            "key": key,
            "state": (JobState.done if decoy else JobState.queued).value,
            "payload": None if spec.sealed or decoy else payload,
            "sealed": None if decoy else sealed,
            "attempts": 0,
            "max_attempts": spec.max_attempts or self.settings.max_attempts,
            "run_at": now + timedelta(seconds=delay_seconds),
            "traceparent": tracing.current_traceparent(),
            "created_at": now,
            "updated_at": now,
            "finished_at": now if decoy else None,
        }
        return key, self._insert_new(values)

    def _insert_new(self, values: dict[str, Any]) -> Insert:
        unique = ["tenant_id", "kind", "key"]
        if self._db.backend is Backend.postgresql:
            pg = postgresql.insert(JobRow).values(**values)
            return pg.on_conflict_do_nothing(index_elements=unique).returning(JobRow.id)
        lite = sqlite.insert(JobRow).values(**values)
        return lite.on_conflict_do_nothing(index_elements=unique).returning(JobRow.id)

    def _seal(self, job_id: uuid.UUID, payload: dict[str, Any]) -> bytes:
        return self._key.seal(json.dumps(payload).encode(), _aad(job_id))

    def _woken(self, _session: Any) -> None:
        self.wake()

    # ---- waking -----------------------------------------------------------------------------

    def wake(self) -> None:
        """Tell this process's worker to look for due jobs now."""
        self._wake.set()

    async def wait(self, seconds: float) -> None:
        """Until ``wake`` or ``seconds``, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    # ---- claim and finish -------------------------------------------------------------------

    async def claim(self, worker: str, limit: int = 1) -> list[Job]:
        """Take up to ``limit`` due jobs of the registered kinds for ``worker``, with a lease
        of ``jobs.lease_seconds``: due queued jobs, and running jobs whose lease expired (their
        worker died) that have attempts left. Each claim counts as an attempt."""
        kinds = self.kinds.names()
        if not kinds or limit < 1:
            return []
        async with self._db.single() as conn:
            rows = (await conn.execute(self._claiming(kinds, worker, limit))).all()
        jobs: list[Job] = []
        for row in rows:
            job = Job(
                id=row.id,
                tenant_id=row.tenant_id,
                kind=row.kind,
                key=row.key,
                payload={},
                attempt=row.attempts,
                max_attempts=row.max_attempts,
                created_at=row.created_at,
                traceparent=row.traceparent,
            )
            try:
                jobs.append(replace(job, payload=self._open(row)))
            except MasterKeyError:
                log.error("job_payload_unreadable", job_id=str(row.id), kind=row.kind)
                error = "the sealed payload does not open with this master key"
                await self.fail(job, worker, error, permanent=True)
        return jobs

    def _claiming(self, kinds: list[str], worker: str, limit: int) -> Update:
        """The one statement of a claim: lock up to ``limit`` claimable rows (skipping rows
        other workers are locking), take them for ``worker``, return them."""
        now = self.clock()
        claimable = or_(
            and_(JobRow.state == JobState.queued, JobRow.run_at <= now),
            and_(
                JobRow.state == JobState.running,
                JobRow.locked_until < now,
                JobRow.attempts < JobRow.max_attempts,
            ),
        )
        picked = (
            select(JobRow.id)
            .where(JobRow.kind.in_(kinds), claimable)
            .order_by(JobRow.run_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (
            update(JobRow)
            .where(JobRow.id.in_(picked.scalar_subquery()))
            .values(
                state=JobState.running.value,
                locked_by=worker,
                locked_until=now + timedelta(seconds=self.settings.lease_seconds),
                attempts=JobRow.attempts + 1,
                updated_at=now,
            )
            .returning(*_CLAIMED)
        )

    def _open(self, row: Any) -> dict[str, Any]:
        if row.sealed is None:
            return dict(row.payload or {})
        opened: dict[str, Any] = json.loads(self._key.open(row.sealed, _aad(row.id)))
        return opened

    def _fenced(self, job: Job, worker: str) -> Update:
        """An update of ``job`` that applies only while ``worker`` still holds this attempt."""
        return update(JobRow).where(
            JobRow.id == job.id,
            JobRow.state == JobState.running,
            JobRow.locked_by == worker,
            JobRow.attempts == job.attempt,
        )

    async def _apply(self, stmt: Update) -> bool:
        async with self._db.single() as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def heartbeat(self, job: Job, worker: str) -> bool:
        """Renew the lease; False when the job is no longer this worker's (taken over)."""
        now = self.clock()
        until = now + timedelta(seconds=self.settings.lease_seconds)
        return await self._apply(
            self._fenced(job, worker).values(locked_until=until, updated_at=now)
        )

    async def complete(self, job: Job, worker: str) -> bool:
        """Mark the job done and drop its sealed payload; False when the lease was lost."""
        now = self.clock()
        return await self._apply(
            self._fenced(job, worker).values(
                state=JobState.done.value,
                finished_at=now,
                updated_at=now,
                locked_by=None,
                locked_until=None,
                sealed=None,
                last_error=None,
            )
        )

    async def fail(
        self, job: Job, worker: str, error: str, *, permanent: bool = False
    ) -> JobState | None:
        """Record a failed attempt: queued again after the backoff, or dead when it was the
        last attempt or ``permanent``. None when the lease was lost (nothing recorded)."""
        now = self.clock()
        dead = permanent or job.final_attempt
        values: dict[str, Any] = {
            "last_error": error[:ERROR_CHARS],
            "locked_by": None,
            "locked_until": None,
            "updated_at": now,
        }
        if dead:
            values.update(state=JobState.dead.value, finished_at=now)
        else:
            spec = self.kinds.get(job.kind)
            base = spec.backoff_base_seconds or self.settings.backoff_base_seconds
            delay = backoff_seconds(job.attempt, base, self.settings.backoff_max_seconds, self._rng)
            values.update(state=JobState.queued.value, run_at=now + timedelta(seconds=delay))
        if not await self._apply(self._fenced(job, worker).values(**values)):
            return None
        return JobState.dead if dead else JobState.queued

    async def release(self, job: Job, worker: str) -> bool:
        """Give an unfinished job back (shutdown): due now, and the attempt not counted."""
        now = self.clock()
        return await self._apply(
            self._fenced(job, worker).values(
                state=JobState.queued.value,
                run_at=now,
                attempts=JobRow.attempts - 1,
                locked_by=None,
                locked_until=None,
                updated_at=now,
            )
        )

    # ---- what is waiting --------------------------------------------------------------------

    async def next_due(self) -> datetime | None:
        """When the next job of a registered kind becomes claimable (a queued job's run_at, a
        running job's lease end); None when there is none."""
        when = case((JobRow.state == JobState.queued, JobRow.run_at), else_=JobRow.locked_until)
        stmt = select(func.min(when)).where(
            JobRow.kind.in_(self.kinds.names()),
            JobRow.state.in_((JobState.queued, JobState.running)),
        )
        async with self._db.single() as conn:
            value: datetime | None = (await conn.execute(stmt)).scalar_one_or_none()
        return value

    async def pending(self, kind: str | None = None) -> int:
        """Jobs queued or running (of ``kind``)."""
        stmt = select(func.count()).where(JobRow.state.in_((JobState.queued, JobState.running)))
        if kind is not None:
            stmt = stmt.where(JobRow.kind == kind)
        async with self._db.single() as conn:
            return int((await conn.execute(stmt)).scalar_one())
