"""The scheduled run: two replicas (each its own engine and pool, as two processes) race for
every slot on SQLite and PostgreSQL, and exactly one of them runs housekeeping per slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from auth_service.audit import events
from auth_service.audit.models import AuditEvent
from auth_service.audit.service import AuditService
from auth_service.config.settings import Settings
from auth_service.db.engine import Database, create_engine
from auth_service.housekeeping import schedule
from auth_service.housekeeping.purge import Housekeeping
from auth_service.jobs.models import JobRow
from auth_service.jobs.queue import JobQueue
from auth_service.jobs.upkeep import JobUpkeep
from auth_service.jobs.worker import JobWorker
from auth_service.security.aead import MasterKey
from tests.support.housekeeping import counts, seed
from tests.support.settings import TEST_MASTER_KEY

INTERVAL_MINUTES = 60


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 6, 1, 12, 0, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Replica:
    db: Database
    queue: JobQueue
    upkeep: JobUpkeep


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[tuple[Clock, Replica, Replica]]:
    clock = Clock()
    built = []
    for _ in range(2):
        settings = Settings(
            database={"url": database_url},  # type: ignore[arg-type]
            housekeeping={  # type: ignore[arg-type]
                "interval_minutes": INTERVAL_MINUTES,
                "batch_size": 500,
                "batch_pause_seconds": 0,
            },
            jobs={"poll_interval_seconds": 0.05},  # type: ignore[arg-type]
        )
        db = Database(create_engine(settings))
        queue = JobQueue(db, settings.jobs, MasterKey.from_text(TEST_MASTER_KEY), clock=clock)
        upkeep = JobUpkeep(db, queue)
        housekeeping = Housekeeping(db, settings, clock=clock)
        schedule.register(queue, upkeep, housekeeping, AuditService(db), settings)
        built.append(Replica(db, queue, upkeep))
    try:
        yield clock, built[0], built[1]
    finally:
        for replica in built:
            await replica.db.dispose()


async def _housekeeping_jobs(db: Database) -> list[JobRow]:
    async with db.sessionmaker() as s:
        stmt = select(JobRow).where(JobRow.kind == schedule.HOUSEKEEPING_KIND)
        return list((await s.execute(stmt)).scalars())


async def test_racing_replicas_make_and_claim_one_job_per_slot(
    replicas: tuple[Clock, Replica, Replica],
) -> None:
    clock, a, b = replicas
    for slot in range(10):
        # Both replicas' upkeep enqueue the slot's job at the same moment, twice each.
        ids = await asyncio.gather(*(r.upkeep.enqueue_scheduled() for r in (a, b, a, b)))
        assert len({job_id for (job_id,) in ids}) == 1
        claims = await asyncio.gather(a.queue.claim("a", 5), b.queue.claim("b", 5))
        assert sorted(len(c) for c in claims) == [0, 1]  # one replica has it, the other none
        (job,) = [j for c in claims for j in c]
        assert job.kind == schedule.HOUSEKEEPING_KIND
        owner, name = (a, "a") if claims[0] else (b, "b")
        assert await owner.queue.complete(job, name)
        # Within the slot nobody enqueues or claims it again.
        clock.now += timedelta(minutes=INTERVAL_MINUTES - 1)
        assert await asyncio.gather(a.upkeep.enqueue_scheduled()) == [[job.id]]
        assert await b.queue.claim("b", 5) == []
        clock.now += timedelta(minutes=1)
        assert len(await _housekeeping_jobs(a.db)) == slot + 1


async def test_racing_workers_run_housekeeping_once(
    replicas: tuple[Clock, Replica, Replica],
) -> None:
    clock, a, b = replicas
    seeded = await seed(a.db, clock.now, scale=0.2)
    workers = [
        JobWorker(r.queue, r.upkeep, concurrency=2, name=name, scheduling=True)
        for r, name in ((a, "replica-a"), (b, "replica-b"))
    ]
    for worker in workers:
        worker.start()
    try:
        async with asyncio.timeout(60):
            while True:
                jobs = await _housekeeping_jobs(a.db)
                if jobs and jobs[0].state == "done":
                    break
                await asyncio.sleep(0.05)
    finally:
        await asyncio.gather(*(w.stop(drain_seconds=5) for w in workers))
    (job,) = await _housekeeping_jobs(a.db)
    assert (job.state, job.attempts) == ("done", 1)
    # Left: what must stay, the housekeeping job itself and the audit event of its run.
    assert await counts(a.db) == {
        **seeded.kept,
        "jobs": seeded.kept["jobs"] + 1,
        "audit_events": seeded.kept["audit_events"] + 1,
    }
    async with a.db.sessionmaker() as s:
        runs = (
            (await s.execute(select(AuditEvent).where(AuditEvent.type == events.HOUSEKEEPING_RUN)))
            .scalars()
            .all()
        )
    assert len(runs) == 1  # one run, by one of the two
    # Finished jobs are also the job upkeep's to purge (each worker's first round): whatever
    # it left, housekeeping took; every other table went in this one run.
    rows = runs[0].details["rows"]
    assert rows.pop("jobs") <= seeded.purged["jobs"]
    assert rows == {t: n for t, n in seeded.purged.items() if t != "jobs"}
