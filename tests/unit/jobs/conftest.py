"""A job queue on the real test databases (SQLite and PostgreSQL), with a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from auth_service.config.settings import JobSettings, Settings
from auth_service.db.engine import Database, create_engine
from auth_service.jobs.kinds import Job, JobKind
from auth_service.jobs.models import JobRow
from auth_service.jobs.queue import JobQueue
from auth_service.jobs.upkeep import JobUpkeep
from auth_service.security.aead import MasterKey
from tests.support.settings import TEST_MASTER_KEY

KIND = "test.echo"
SEALED = "test.sealed"


class Clock:
    """Time as the queue sees it; moved by the test, never slept on."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Handled:
    """What the test kinds' handler saw."""

    jobs: list[Job] = field(default_factory=list)

    async def __call__(self, job: Job) -> None:
        self.jobs.append(job)


@dataclass
class QueueFixture:
    queue: JobQueue
    upkeep: JobUpkeep
    db: Database
    clock: Clock
    handled: Handled

    async def row(self, job_id: Any) -> JobRow:
        async with self.db.sessionmaker() as s:
            return (await s.execute(select(JobRow).where(JobRow.id == job_id))).scalar_one()

    async def rows(self) -> list[JobRow]:
        async with self.db.sessionmaker() as s:
            return list((await s.execute(select(JobRow))).scalars())


JOB_SETTINGS = JobSettings(
    lease_seconds=30,
    max_attempts=3,
    backoff_base_seconds=10,
    backoff_max_seconds=60,
    retention_hours=1,
    dead_retention_days=1,
)


def make_queue(db: Database, clock: Clock, settings: JobSettings = JOB_SETTINGS) -> JobQueue:
    # rng 0.5: the jitter lands in the middle of its range, so delays are exact in tests.
    return JobQueue(
        db, settings, MasterKey.from_text(TEST_MASTER_KEY), clock=clock, rng=lambda: 0.5
    )


@pytest.fixture
async def jobs(database_url: str) -> AsyncIterator[QueueFixture]:
    db = Database(create_engine(Settings(database={"url": database_url})))  # type: ignore[arg-type]
    clock = Clock()
    handled = Handled()
    queue = make_queue(db, clock)
    queue.register(JobKind(KIND, handled))
    queue.register(JobKind(SEALED, handled, sealed=True))
    try:
        yield QueueFixture(queue, JobUpkeep(db, queue), db, clock, handled)
    finally:
        await db.dispose()
