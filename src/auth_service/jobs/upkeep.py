"""Keeping the jobs table healthy: jobs lost on their last attempt become dead, finished jobs
are deleted after their retention in small batches, and the queue's gauges are sampled."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import and_, delete, func, or_, select, update

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

    async def run(self) -> None:
        """One round of upkeep (each worker runs one every 30 s): bury lost jobs, sample the
        gauges, and every PURGE_INTERVAL_SECONDS purge (it reads the finished rows)."""
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
        settings = self._queue.settings
        now = self._queue.clock()
        expired = or_(
            and_(
                JobRow.state.in_(FINISHED_STATES),
                JobRow.finished_at < now - timedelta(hours=settings.retention_hours),
            ),
            and_(
                JobRow.state == JobState.dead,
                JobRow.finished_at < now - timedelta(days=settings.dead_retention_days),
            ),
        )
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
