"""What an operator does with jobs (admin API and CLI): list and read them, retry a dead job,
discard one. Retrying and discarding are audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.db.base import DEFAULT_TENANT_ID
from auth_service.db.engine import Database
from auth_service.jobs.errors import JobNotDead, JobNotFound
from auth_service.jobs.kinds import JobState
from auth_service.jobs.models import JobRow
from auth_service.jobs.queue import JobQueue


@dataclass(frozen=True)
class JobView:
    """A job as an operator sees it: never a sealed payload (``payload`` is None then)."""

    id: uuid.UUID
    kind: str
    key: str
    state: str
    attempts: int
    max_attempts: int
    run_at: datetime
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    locked_by: str | None
    locked_until: datetime | None
    last_error: str | None
    sealed: bool
    payload: dict[str, Any] | None

    @classmethod
    def of(cls, row: JobRow) -> JobView:
        return cls(
            id=row.id,
            kind=row.kind,
            key=row.key,
            state=row.state,
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            run_at=row.run_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
            finished_at=row.finished_at,
            locked_by=row.locked_by,
            locked_until=row.locked_until,
            last_error=row.last_error,
            sealed=row.payload is None,
            payload=row.payload,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the CLI's ``--format json``, with the admin API's field names)."""
        out: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, uuid.UUID):
                value = str(value)
            out[name] = value
        return out


class JobAdmin:
    def __init__(self, db: Database, queue: JobQueue, audit: AuditService) -> None:
        self._db = db
        self._queue = queue
        self._audit = audit

    async def list(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
        tenant_id: uuid.UUID = DEFAULT_TENANT_ID,
    ) -> tuple[list[JobView], int]:
        """Jobs newest first, filtered by state and kind; and how many match."""
        where = [JobRow.tenant_id == tenant_id]
        if state is not None:
            where.append(JobRow.state == state)
        if kind is not None:
            where.append(JobRow.kind == kind)
        page = (
            select(JobRow)
            .where(*where)
            .order_by(JobRow.created_at.desc(), JobRow.id)
            .limit(limit)
            .offset(offset)
        )
        async with self._db.sessionmaker() as s:
            rows = (await s.execute(page)).scalars().all()
            total = (await s.execute(select(func.count()).where(*where))).scalar_one()
        return [JobView.of(r) for r in rows], int(total)

    async def get(self, job_id: uuid.UUID, tenant_id: uuid.UUID = DEFAULT_TENANT_ID) -> JobView:
        """One job. Raises JobNotFound."""
        async with self._db.sessionmaker() as s:
            row = await s.get(JobRow, job_id)
        if row is None or row.tenant_id != tenant_id:
            raise JobNotFound
        return JobView.of(row)

    async def retry(self, job_id: uuid.UUID, ctx: RequestContext) -> JobView:
        """Queue a dead job again, due now, with its attempts back to zero.

        Raises JobNotFound or JobNotDead.
        """
        now = self._queue.clock()
        view = await self._transition(
            job_id,
            ctx,
            events.JOB_RETRIED,
            state=JobState.queued.value,
            attempts=0,
            run_at=now,
            finished_at=None,
            updated_at=now,
        )
        self._queue.wake()
        return view

    async def discard(self, job_id: uuid.UUID, ctx: RequestContext) -> JobView:
        """Give up on a dead job for good: it is never run, and its sealed payload is dropped
        (the row stays until ``jobs.retention_hours``, remembering its idempotency key).

        Raises JobNotFound or JobNotDead.
        """
        now = self._queue.clock()
        return await self._transition(
            job_id,
            ctx,
            events.JOB_DISCARDED,
            state=JobState.discarded.value,
            sealed=None,
            finished_at=now,
            updated_at=now,
        )

    async def _transition(
        self, job_id: uuid.UUID, ctx: RequestContext, event_type: str, **values: Any
    ) -> JobView:
        stmt = (
            update(JobRow)
            .where(
                JobRow.id == job_id,
                JobRow.tenant_id == DEFAULT_TENANT_ID,
                JobRow.state == JobState.dead,
            )
            .values(**values)
            .returning(JobRow.kind)
        )
        async with self._db.single() as conn:
            kind = (await conn.execute(stmt)).scalar_one_or_none()
        if kind is None:
            current = await self.get(job_id)  # JobNotFound
            raise JobNotDead(current.state)
        await self._audit.record(event_type, ctx, details={"job_id": str(job_id), "job_kind": kind})
        return await self.get(job_id)
