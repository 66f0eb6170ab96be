"""A process's worker on SQLite and PostgreSQL: runs what is due, retries and dead-letters,
renews leases, gives a job up when another worker took it, and drains on stop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from auth_service.config.settings import JobSettings
from auth_service.db.base import utcnow
from auth_service.db.errors import DatabaseUnavailable
from auth_service.jobs.kinds import Job, JobKind, PermanentFailure
from auth_service.jobs.models import JobRow
from auth_service.jobs.queue import JobQueue
from auth_service.jobs.upkeep import JobUpkeep
from auth_service.jobs.worker import JobWorker
from tests.unit.jobs.conftest import KIND, QueueFixture, make_queue

FAST = JobSettings(
    workers=2,
    poll_interval_seconds=0.05,
    lease_seconds=1,
    max_attempts=3,
    backoff_base_seconds=0.01,
    backoff_max_seconds=0.05,
)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    """Poll ``check`` until it holds (the state a worker reaches), failing after ``within``."""
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.02)


@pytest.fixture
def queue(jobs: QueueFixture) -> JobQueue:
    """A queue on the real clock, for a worker that really runs."""
    return make_queue(jobs.db, utcnow, FAST)  # type: ignore[arg-type]


@asynccontextmanager
async def running(
    queue: JobQueue, jobs: QueueFixture, drain: float = 5.0
) -> AsyncIterator[JobWorker]:
    worker = JobWorker(queue, JobUpkeep(jobs.db, queue))
    worker.start()
    try:
        yield worker
    finally:
        await worker.stop(drain)


class Stuck:
    """A handler that never finishes by itself; remembers being cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def __call__(self, job: Job) -> None:
        self.started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


def _runs(kind: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("auth_job_runs_total", {"kind": kind, "outcome": outcome})
    return value or 0.0


async def test_runs_jobs_enqueued_before_and_while_it_runs(
    queue: JobQueue, jobs: QueueFixture
) -> None:
    seen: list[int] = []

    async def handler(job: Job) -> None:
        seen.append(job.payload["n"])

    queue.register(JobKind(KIND, handler))
    for n in range(3):
        await queue.enqueue(KIND, {"n": n})
    async with running(queue, jobs):
        for n in range(3, 6):
            await queue.enqueue(KIND, {"n": n})

        async def all_done() -> bool:
            return len(seen) == 6 and await queue.pending() == 0

        await eventually(all_done)
    assert sorted(seen) == list(range(6))
    assert {r.state for r in await jobs.rows()} == {"done"}


async def test_failures_are_retried_then_dead_lettered(queue: JobQueue, jobs: QueueFixture) -> None:
    kind = f"test.fail.{uuid.uuid4().hex[:6]}"
    attempts: list[int] = []
    dead: list[tuple[uuid.UUID, str]] = []

    async def handler(job: Job) -> None:
        attempts.append(job.attempt)
        raise ConnectionError("the receiver is down")

    queue.register(JobKind(kind, handler, on_dead=lambda i, e: dead.append((i, e))))
    job_id = await queue.enqueue(kind, {})
    async with running(queue, jobs):
        await eventually(lambda: _state(jobs, job_id, "dead"))
    assert attempts == [1, 2, 3]
    assert dead == [(job_id, "ConnectionError: the receiver is down")]
    assert (_runs(kind, "retry"), _runs(kind, "dead")) == (2, 1)


async def test_an_outcome_the_database_refuses_for_a_while_is_recorded_without_a_rerun(
    queue: JobQueue, jobs: QueueFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The refusal is injected (a full disk is tests/integration/db/test_sqlite_disk_full.py):
    # the first two records of the outcome fail, as they do while the disk is full.
    calls: list[int] = []
    refusals = [DatabaseUnavailable("SQLITE_FULL"), DatabaseUnavailable("SQLITE_FULL")]
    complete = queue.complete

    async def flaky_complete(job: Job, worker: str) -> bool:
        if refusals:
            raise refusals.pop()
        return await complete(job, worker)

    async def handler(job: Job) -> None:
        calls.append(job.attempt)

    monkeypatch.setattr(queue, "complete", flaky_complete)
    queue.register(JobKind(KIND, handler))
    job_id = await queue.enqueue(KIND, {})
    async with running(queue, jobs):
        await eventually(lambda: _state(jobs, job_id, "done"))
    assert refusals == []
    assert calls == [1]  # the effect happened once: the record waited, the job did not rerun


async def test_a_permanent_failure_is_not_retried(queue: JobQueue, jobs: QueueFixture) -> None:
    calls: list[int] = []

    async def handler(job: Job) -> None:
        calls.append(job.attempt)
        raise PermanentFailure("SMTP 550")

    queue.register(JobKind(KIND, handler))
    job_id = await queue.enqueue(KIND, {})
    async with running(queue, jobs):
        await eventually(lambda: _state(jobs, job_id, "dead"))
    assert calls == [1]
    assert (await jobs.row(job_id)).last_error == "PermanentFailure: SMTP 550"


async def test_an_attempt_that_outlives_its_timeout_fails(
    queue: JobQueue, jobs: QueueFixture
) -> None:
    async def handler(job: Job) -> None:
        await asyncio.sleep(3600)

    queue.register(JobKind(KIND, handler, timeout_seconds=0.05, max_attempts=1))
    job_id = await queue.enqueue(KIND, {})
    async with running(queue, jobs):
        await eventually(lambda: _state(jobs, job_id, "dead"))
    assert (await jobs.row(job_id)).last_error == "TimeoutError: the attempt timed out"


async def test_stop_lets_a_running_job_finish_within_the_drain(
    queue: JobQueue, jobs: QueueFixture
) -> None:
    started, finish = asyncio.Event(), asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        await finish.wait()

    queue.register(JobKind(KIND, handler))
    job_id = await queue.enqueue(KIND, {})
    worker = JobWorker(queue, JobUpkeep(jobs.db, queue))
    worker.start()
    await asyncio.wait_for(started.wait(), 15)
    stopping = asyncio.create_task(worker.stop(drain_seconds=15))
    await asyncio.sleep(0)
    finish.set()
    await stopping
    assert (await jobs.row(job_id)).state == "done"


async def test_stop_releases_a_job_that_outlives_the_drain(
    queue: JobQueue, jobs: QueueFixture
) -> None:
    stuck = Stuck()
    queue.register(JobKind(KIND, stuck))
    job_id = await queue.enqueue(KIND, {})
    worker = JobWorker(queue, JobUpkeep(jobs.db, queue))
    worker.start()
    await asyncio.wait_for(stuck.started.wait(), 15)
    before = _runs(KIND, "released")
    await worker.stop(drain_seconds=0.05)
    row = await jobs.row(job_id)
    assert stuck.cancelled
    assert (row.state, row.attempts, row.locked_by) == ("queued", 0, None)
    assert _runs(KIND, "released") == before + 1


async def test_a_job_whose_lease_was_taken_over_is_abandoned(
    queue: JobQueue, jobs: QueueFixture
) -> None:
    """Heartbeats find the job held by another worker (this one stalled past its lease): the
    handler is cancelled and the other worker's row is left alone."""
    stuck = Stuck()
    queue.register(JobKind(KIND, stuck))
    job_id = await queue.enqueue(KIND, {})
    async with running(queue, jobs) as worker:
        await asyncio.wait_for(stuck.started.wait(), 15)
        async with jobs.db.transaction() as s:
            await s.execute(
                update(JobRow)
                .where(JobRow.id == job_id)
                .values(locked_by="someone-else", attempts=JobRow.attempts + 1)
            )

        async def abandoned() -> bool:
            return stuck.cancelled and worker.running == 0

        await eventually(abandoned)
    row = await jobs.row(job_id)
    assert (row.state, row.locked_by, row.attempts) == ("running", "someone-else", 2)


async def _state(jobs: QueueFixture, job_id: uuid.UUID, state: str) -> bool:
    return (await jobs.row(job_id)).state == state


async def test_without_slots_it_runs_nothing_but_keeps_the_gauges(
    queue: JobQueue, jobs: QueueFixture
) -> None:
    kind = f"test.gauge.{uuid.uuid4().hex[:6]}"
    queue.register(JobKind(kind, Stuck()))
    for _ in range(3):
        await queue.enqueue(kind, {})
    worker = JobWorker(queue, JobUpkeep(jobs.db, queue), concurrency=0)
    worker.start()
    try:

        async def sampled() -> bool:
            depth = {"kind": kind, "state": "queued"}
            return REGISTRY.get_sample_value("auth_job_queue_depth", depth) == 3

        await eventually(sampled)
        assert REGISTRY.get_sample_value("auth_job_oldest_age_seconds", {"kind": kind}) >= 0
    finally:
        await worker.stop(drain_seconds=1)
    assert {r.state for r in await jobs.rows()} == {"queued"}
