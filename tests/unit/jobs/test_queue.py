"""The queue's statements on SQLite and PostgreSQL: enqueue, claim, retry with backoff, dead
letters, idempotency keys, the visibility timeout, sealed payloads, purging."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from auth_service.jobs.kinds import JobKind, JobState, UnknownJobKind, backoff_seconds
from auth_service.jobs.queue import JobQueue
from auth_service.jobs.upkeep import LOST_ERROR, JobUpkeep
from auth_service.security.aead import MasterKey
from tests.unit.jobs.conftest import (
    JOB_SETTINGS,
    KIND,
    SEALED,
    Handled,
    QueueFixture,
    make_queue,
)

A, B = "worker-a", "worker-b"


async def test_enqueue_claim_complete(jobs: QueueFixture) -> None:
    job_id = await jobs.queue.enqueue(KIND, {"n": 1})
    (job,) = await jobs.queue.claim(A)
    assert (job.id, job.kind, job.payload, job.attempt, job.max_attempts) == (
        job_id,
        KIND,
        {"n": 1},
        1,
        3,
    )
    assert job.key == job_id.hex  # no key given: the job's id is its idempotency key
    row = await jobs.row(job_id)
    assert (row.state, row.locked_by) == ("running", A)
    assert row.locked_until == jobs.clock.now + timedelta(seconds=30)
    assert await jobs.queue.claim(B) == []  # nothing else is due
    assert await jobs.queue.complete(job, A)
    row = await jobs.row(job_id)
    assert (row.state, row.attempts, row.locked_by, row.locked_until) == ("done", 1, None, None)
    assert row.finished_at == jobs.clock.now
    assert await jobs.queue.pending() == 0


async def test_unknown_kinds_are_neither_enqueued_nor_claimed(jobs: QueueFixture) -> None:
    with pytest.raises(UnknownJobKind):
        await jobs.queue.enqueue("nobody.knows", {})
    # A newer replica enqueues a kind this one has no handler for: it is left for them.
    newer = make_queue(jobs.db, jobs.clock)
    newer.register(JobKind("newer.kind", Handled()))
    newer_id = await newer.enqueue("newer.kind", {})
    assert await jobs.queue.claim(A, limit=10) == []
    (job,) = await newer.claim(B)
    assert job.id == newer_id


async def test_a_job_exists_if_and_only_if_its_transaction_commits(jobs: QueueFixture) -> None:
    async def enqueue_then_fail() -> None:
        async with jobs.db.transaction() as s:
            await jobs.queue.enqueue(KIND, {"n": "rolled back"}, session=s)
            raise RuntimeError("the cause fails after the enqueue")

    with pytest.raises(RuntimeError):
        await enqueue_then_fail()
    assert await jobs.rows() == []
    async with jobs.db.transaction() as s:
        job_id = await jobs.queue.enqueue(KIND, {"n": "committed"}, session=s)
    (job,) = await jobs.queue.claim(A)
    assert (job.id, job.payload) == (job_id, {"n": "committed"})


async def test_an_idempotency_key_makes_one_job(jobs: QueueFixture) -> None:
    first = await jobs.queue.enqueue(KIND, {"n": 1}, key="user-42-welcome")
    again = await jobs.queue.enqueue(KIND, {"n": 2}, key="user-42-welcome")
    async with jobs.db.transaction() as s:
        inside = await jobs.queue.enqueue(KIND, {"n": 3}, key="user-42-welcome", session=s)
    other_kind = await jobs.queue.enqueue(SEALED, {"n": 4}, key="user-42-welcome")
    assert first == again == inside
    assert other_kind != first  # keys are per kind
    (job,) = [j for j in await jobs.queue.claim(A, limit=5) if j.kind == KIND]
    assert job.payload == {"n": 1}
    assert job.key == "user-42-welcome"
    # Still remembered once done: a late duplicate does not run the job again.
    assert await jobs.queue.complete(job, A)
    assert await jobs.queue.enqueue(KIND, {"n": 5}, key="user-42-welcome") == first
    assert len(await jobs.rows()) == 2


async def test_concurrent_enqueues_of_one_key_make_one_job(jobs: QueueFixture) -> None:
    ids = await asyncio.gather(*(jobs.queue.enqueue(KIND, {}, key="same") for _ in range(8)))
    assert len(set(ids)) == 1
    assert len(await jobs.rows()) == 1


async def test_a_failed_attempt_is_retried_after_exponential_backoff(jobs: QueueFixture) -> None:
    job_id = await jobs.queue.enqueue(KIND, {})
    (job,) = await jobs.queue.claim(A)
    assert await jobs.queue.fail(job, A, "ConnectionError: refused") is JobState.queued
    row = await jobs.row(job_id)
    # base 10 s, first retry: 10 s, jittered into [5, 10] (rng 0.5 -> 7.5 s).
    assert row.run_at == jobs.clock.now + timedelta(seconds=7.5)
    assert (row.state, row.attempts, row.last_error) == ("queued", 1, "ConnectionError: refused")
    assert row.locked_by is None
    jobs.clock.advance(7)
    assert await jobs.queue.claim(A) == []  # not due yet
    assert await jobs.queue.next_due() == row.run_at
    jobs.clock.advance(1)
    (job,) = await jobs.queue.claim(A)
    assert job.attempt == 2
    assert await jobs.queue.fail(job, A, "ConnectionError: refused") is JobState.queued
    row = await jobs.row(job_id)
    assert row.run_at == jobs.clock.now + timedelta(seconds=15)  # 20 s jittered


async def test_dead_letter_after_max_attempts(jobs: QueueFixture) -> None:
    job_id = await jobs.queue.enqueue(KIND, {})
    for attempt in (1, 2, 3):
        jobs.clock.advance(3600)
        (job,) = await jobs.queue.claim(A)
        assert job.attempt == attempt
        assert job.final_attempt is (attempt == 3)
        state = await jobs.queue.fail(job, A, f"failure {attempt}")
    assert state is JobState.dead
    row = await jobs.row(job_id)
    assert (row.state, row.attempts, row.last_error) == ("dead", 3, "failure 3")
    assert row.finished_at == jobs.clock.now
    jobs.clock.advance(3600)
    assert await jobs.queue.claim(A) == []  # a dead job waits for an operator
    assert await jobs.queue.pending() == 0


async def test_a_permanent_failure_is_dead_at_once(jobs: QueueFixture) -> None:
    job_id = await jobs.queue.enqueue(KIND, {})
    (job,) = await jobs.queue.claim(A)
    assert await jobs.queue.fail(job, A, "SMTP 550", permanent=True) is JobState.dead
    assert (await jobs.row(job_id)).attempts == 1


async def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    assert backoff_seconds(1, 2, 60, lambda: 0.0) == 1
    assert backoff_seconds(1, 2, 60, lambda: 1.0) == 2
    assert backoff_seconds(4, 2, 60, lambda: 1.0) == 16
    assert backoff_seconds(10, 2, 60, lambda: 0.0) == 30
    assert backoff_seconds(10, 2, 60, lambda: 1.0) == 60


async def test_an_expired_lease_makes_the_job_claimable_again(jobs: QueueFixture) -> None:
    """The worker holding the job died (no heartbeat): after the visibility timeout another
    worker takes it, and the dead worker's late writes are refused."""
    job_id = await jobs.queue.enqueue(KIND, {})
    (lost,) = await jobs.queue.claim(A)
    jobs.clock.advance(29)
    assert await jobs.queue.claim(B) == []  # the lease still holds
    jobs.clock.advance(2)
    (taken,) = await jobs.queue.claim(B)
    assert (taken.id, taken.attempt) == (job_id, 2)
    # A comes back from a long pause: every write of its attempt is fenced off.
    assert not await jobs.queue.heartbeat(lost, A)
    assert not await jobs.queue.complete(lost, A)
    assert await jobs.queue.fail(lost, A, "late") is None
    assert not await jobs.queue.release(lost, A)
    assert await jobs.queue.complete(taken, B)
    assert (await jobs.row(job_id)).state == "done"


async def test_heartbeats_keep_a_long_job_leased(jobs: QueueFixture) -> None:
    job_id = await jobs.queue.enqueue(KIND, {})
    (job,) = await jobs.queue.claim(A)
    for _ in range(5):  # 100 s of work, renewing every 20 s
        jobs.clock.advance(20)
        assert await jobs.queue.heartbeat(job, A)
    assert await jobs.queue.claim(B) == []
    assert (await jobs.row(job_id)).locked_until == jobs.clock.now + timedelta(seconds=30)


async def test_a_job_lost_on_its_last_attempt_is_dead(jobs: QueueFixture) -> None:
    queue = make_queue(jobs.db, jobs.clock)
    queue.register(JobKind("test.once", Handled(), max_attempts=1))
    job_id = await queue.enqueue("test.once", {})
    await queue.claim(A)
    jobs.clock.advance(31)
    assert await queue.claim(B) == []  # no attempts left to give it
    assert await JobUpkeep(jobs.db, queue).bury_lost() == 1
    row = await jobs.row(job_id)
    assert (row.state, row.last_error, row.locked_by) == ("dead", LOST_ERROR, None)


async def test_release_gives_the_job_back_without_counting_the_attempt(
    jobs: QueueFixture,
) -> None:
    job_id = await jobs.queue.enqueue(KIND, {})
    (job,) = await jobs.queue.claim(A)
    assert await jobs.queue.release(job, A)
    row = await jobs.row(job_id)
    assert (row.state, row.attempts, row.run_at, row.locked_by) == (
        "queued",
        0,
        jobs.clock.now,
        None,
    )
    (again,) = await jobs.queue.claim(B)
    assert again.attempt == 1


async def test_sealed_payloads_are_encrypted_and_dropped_when_done(jobs: QueueFixture) -> None:
    secret = "https://auth.example/reset?token=" + uuid.uuid4().hex
    job_id = await jobs.queue.enqueue(SEALED, {"link": secret})
    async with jobs.db.engine.connect() as conn:
        raw = (await conn.execute(text("SELECT payload, sealed FROM jobs"))).one()
    assert raw.payload is None
    assert secret.encode() not in bytes(raw.sealed)
    (job,) = await jobs.queue.claim(A)
    assert job.payload == {"link": secret}
    assert await jobs.queue.complete(job, A)
    assert (await jobs.row(job_id)).sealed is None


async def test_concurrent_claims_never_share_a_job(jobs: QueueFixture) -> None:
    """Twelve claimers at once (PostgreSQL: FOR UPDATE SKIP LOCKED on separate connections;
    SQLite: one writer at a time) take each of 60 jobs exactly once."""
    ids = {await jobs.queue.enqueue(KIND, {"n": n}) for n in range(60)}

    async def claimer(name: str) -> list[uuid.UUID]:
        mine: list[uuid.UUID] = []
        while batch := await jobs.queue.claim(name, limit=3):
            mine += [j.id for j in batch]
        return mine

    taken = await asyncio.gather(*(claimer(f"w{i}") for i in range(12)))
    flat = [job_id for mine in taken for job_id in mine]
    assert sorted(flat) == sorted(ids)
    assert len(flat) == len(set(flat))


async def test_purge_deletes_finished_jobs_after_their_retention(jobs: QueueFixture) -> None:
    done_id = await jobs.queue.enqueue(KIND, {}, key="old-done")
    (job,) = await jobs.queue.claim(A)
    await jobs.queue.complete(job, A)
    dead_id = await jobs.queue.enqueue(KIND, {}, key="old-dead")
    (job,) = await jobs.queue.claim(A)
    await jobs.queue.fail(job, A, "x", permanent=True)
    jobs.clock.advance(2 * 3600)  # past retention_hours (1), within dead_retention_days (1)
    fresh_id = await jobs.queue.enqueue(KIND, {}, key="fresh")
    assert await jobs.upkeep.purge() == 1
    assert {r.id for r in await jobs.rows()} == {dead_id, fresh_id}
    assert done_id not in {r.id for r in await jobs.rows()}
    # The key is forgotten with its row: enqueueing it again is a new job.
    assert await jobs.queue.enqueue(KIND, {}, key="old-done") != done_id
    jobs.clock.advance(25 * 3600)
    assert await jobs.upkeep.purge() == 1  # the dead job, after dead_retention_days
    assert dead_id not in {r.id for r in await jobs.rows()}


async def test_depth_counts_jobs_by_kind_and_state(jobs: QueueFixture) -> None:
    first = jobs.clock.now
    await jobs.queue.enqueue(KIND, {})
    jobs.clock.advance(5)
    await jobs.queue.enqueue(KIND, {})
    await jobs.queue.enqueue(SEALED, {})
    await jobs.queue.claim(A)  # the oldest test.echo job is running
    depth = {(d.kind, d.state): (d.count, d.oldest) for d in await jobs.upkeep.depth()}
    assert depth == {
        (KIND, "running"): (1, first),
        (KIND, "queued"): (1, jobs.clock.now),
        (SEALED, "queued"): (1, jobs.clock.now),
    }
    await jobs.upkeep.sample()


async def test_a_payload_sealed_under_another_master_key_is_dead_at_once(
    jobs: QueueFixture,
) -> None:
    job_id = await jobs.queue.enqueue(SEALED, {"link": "secret"})
    another_key = MasterKey.from_text(MasterKey.generate_text())
    other = JobQueue(jobs.db, JOB_SETTINGS, another_key, clock=jobs.clock)
    other.register(JobKind(SEALED, Handled(), sealed=True))
    assert await other.claim(A) == []
    row = await jobs.row(job_id)
    assert (row.state, row.attempts) == ("dead", 1)
    assert row.last_error == "the sealed payload does not open with this master key"
