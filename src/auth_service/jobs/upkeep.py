"""Keeping the jobs table healthy: jobs lost on their last attempt become dead, finished jobs
are deleted after their retention in small batches, and the queue's gauges are sampled.

It also enqueues the *scheduled* jobs (housekeeping, backup pruning): every upkeep round of
every process enqueues the job of the current slot under an idempotency key naming the slot,
so the deployment holds one job per slot however many processes try, and the queue's lease
lets one worker run it at a time (ADR 0910)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update

from auth_service.config.settings import JobSettings
from auth_service.db.engine import Database
from auth_service.jobs.kinds import FINISHED_STATES, JobState
from auth_service.jobs.models import JobRow
from auth_service.jobs.queue import JobQueue
from auth_service.observability import metrics

log = structlog.get_logger(__name__)

PURGE_BATCH = 500
PURGE_INTERVAL_SECONDS = 600.0
PURGE_MAX_BATCHES = 20
LOST_ERROR = "the worker was lost (its lease expired) during the last attempt"
_SAMPLED_STATES = (JobState.queued, JobState.running, JobState.dead)


@dataclass(frozen=True)
class Schedule:
    """A kind enqueued once per ``every_seconds`` slot (slots counted from the Unix epoch)."""

    kind: str
    every_seconds: int

    def key(self, now: datetime) -> str:
        """The idempotency key of the slot ``now`` falls in: one job per slot."""
        slot = int(now.timestamp()) // self.every_seconds
        return f"every-{self.every_seconds}s-{slot}"


def finished_jobs(now: datetime, settings: JobSettings) -> ColumnElement[bool]:
    """The jobs past their retention: finished ones after ``jobs.retention_hours``, dead ones
    after ``jobs.dead_retention_days``."""
    return or_(
        and_(
            JobRow.state.in_(FINISHED_STATES),
            JobRow.finished_at < now - timedelta(hours=settings.retention_hours),
        ),
        and_(
            JobRow.state == JobState.dead,
            JobRow.finished_at < now - timedelta(days=settings.dead_retention_days),
        ),
    )


@dataclass(frozen=True)
class Depth:
    kind: str
    state: str
    count: int
    oldest: datetime


class JobUpkeep:
    def __init__(self, db: Database, queue: JobQueue) -> None:
        self._db = db
        self._queue = queue
        self._next_purge = 0.0
        self.schedules: list[Schedule] = []

    def schedule(self, kind: str, every_seconds: int) -> None:
        """Enqueue a job of ``kind`` (registered) once per ``every_seconds`` from now on."""
        self._queue.kinds.get(kind)
        if every_seconds < 1:
            raise ValueError("a schedule's interval is at least one second")
        self.schedules.append(Schedule(kind, every_seconds))

    async def enqueue_scheduled(self) -> list[uuid.UUID]:
        """The job of the current slot of each schedule; a slot's job that exists (another
        process enqueued it, or it ran) is left as it is."""
        now = self._queue.clock()
        return [
            await self._queue.enqueue(s.kind, {"slot": s.key(now)}, key=s.key(now))
            for s in self.schedules
        ]

    async def run(self, *, scheduling: bool = False) -> None:
        """One round of upkeep (each worker runs one every 30 s): enqueue the scheduled jobs
        (``scheduling``: long-running workers only), bury lost jobs, sample the gauges, and
        every PURGE_INTERVAL_SECONDS purge (it reads the finished rows)."""
        if scheduling:
            await self.enqueue_scheduled()
        await self.bury_lost()
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_INTERVAL_SECONDS
            await self.purge()
        await self.sample()

    async def bury_lost(self) -> int:
        """Dead-letter the running jobs whose lease expired on their last attempt: their
        worker died mid-job as many times as the job may run (a job that kills its worker
        must not take every worker down in turn)."""
        now = self._queue.clock()
        stmt = (
            update(JobRow)
            .where(
                JobRow.state == JobState.running,
                JobRow.locked_until < now,
                JobRow.attempts >= JobRow.max_attempts,
            )
            .values(
                state=JobState.dead.value,
                last_error=LOST_ERROR,
                locked_by=None,
                locked_until=None,
                finished_at=now,
                updated_at=now,
            )
            .returning(JobRow.id, JobRow.kind)
        )
        async with self._db.single() as conn:
            rows = (await conn.execute(stmt)).all()
        for row in rows:
            log.warning("job_dead", job_id=str(row.id), kind=row.kind, reason="lost")
            metrics.JOB_RUNS.labels(row.kind, "dead").inc()
            try:
                spec = self._queue.kinds.get(row.kind)
            except LookupError:
                continue
            if spec.on_dead is not None:
                spec.on_dead(row.id, LOST_ERROR)
        return len(rows)

    async def purge(self) -> int:
        """Delete finished jobs past ``jobs.retention_hours`` and dead ones past
        ``jobs.dead_retention_days``, a few hundred rows per statement."""
        expired = finished_jobs(self._queue.clock(), self._queue.settings)
        total = 0
        for _ in range(PURGE_MAX_BATCHES):
            batch = select(JobRow.id).where(expired).limit(PURGE_BATCH).scalar_subquery()
            async with self._db.single() as conn:
                deleted = (await conn.execute(delete(JobRow).where(JobRow.id.in_(batch)))).rowcount
            total += deleted
            if deleted < PURGE_BATCH:
                break
        if total:
            log.info("jobs_purged", rows=total)
        return total

    async def depth(self) -> list[Depth]:
        """Jobs waiting, running and dead, by kind, with the creation time of the oldest."""
        stmt = (
            select(JobRow.kind, JobRow.state, func.count(), func.min(JobRow.created_at))
            .where(JobRow.state.in_(_SAMPLED_STATES))
            .group_by(JobRow.kind, JobRow.state)
        )
        async with self._db.single() as conn:
            rows = (await conn.execute(stmt)).all()
        return [Depth(kind, state, int(count), oldest) for kind, state, count, oldest in rows]

    async def sample(self) -> None:
        """Set the queue gauges from the table (every kind this process knows, 0 when idle)."""
        now = self._queue.clock()
        found = await self.depth()
        kinds = set(self._queue.kinds.names()) | {d.kind for d in found}
        counts = {(d.kind, d.state): d.count for d in found}
        for kind in kinds:
            for state in _SAMPLED_STATES:
                metrics.JOB_QUEUE_DEPTH.labels(kind, state.value).set(
                    counts.get((kind, state.value), 0)
                )
            waiting = [d.oldest for d in found if d.kind == kind and d.state != JobState.dead.value]
            age = (now - min(waiting)).total_seconds() if waiting else 0.0
            metrics.JOB_OLDEST_AGE.labels(kind).set(max(age, 0.0))
