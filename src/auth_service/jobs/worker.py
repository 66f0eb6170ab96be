"""The worker of one process: claims due jobs of the registered kinds, runs up to
``concurrency`` at once, renews their leases while they run, and records each outcome.

Every serving process runs one (the runtime starts it with the app and stops it on drain);
``auth-service jobs work`` runs one on its own. On stop a running job may finish within
``jobs.drain_seconds``; after that it is released (queued again, the attempt not counted).
A worker that dies without stopping (SIGKILL, OOM, power) leaves its jobs running until
their lease expires; any worker then claims them again (ADR 0900: at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from auth_service.jobs.kinds import Job, JobState, PermanentFailure
from auth_service.jobs.queue import JobQueue
from auth_service.jobs.upkeep import JobUpkeep
from auth_service.observability import metrics, tracing

log = structlog.get_logger(__name__)

T = TypeVar("T")

UPKEEP_INTERVAL_SECONDS = 30.0
# Shortest idle wait: a due job another worker is claiming right now is not ours to chase.
MIN_WAIT_SECONDS = 0.02


def worker_name() -> str:
    """Names this process's worker in ``locked_by``: the host and pid an operator can find."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def describe(exc: BaseException) -> str:
    """The failure as stored in ``last_error`` and logged: its type and message."""
    if isinstance(exc, TimeoutError):
        return "TimeoutError: the attempt timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class JobWorker:
    def __init__(
        self,
        queue: JobQueue,
        upkeep: JobUpkeep,
        *,
        concurrency: int | None = None,
        name: str | None = None,
        scheduling: bool = False,
    ) -> None:
        self.queue = queue
        self.upkeep = upkeep
        self.concurrency = queue.settings.workers if concurrency is None else concurrency
        self.name = name or worker_name()
        # Enqueue the scheduled jobs (upkeep.schedule) each upkeep round: the workers of
        # serving processes and of `jobs work`, not a command's short-lived one.
        self.scheduling = scheduling
        self._running: dict[asyncio.Task[None], Job] = {}
        self._lost: set[uuid.UUID] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        self._stopping = False
        self.idle = asyncio.Event()  # set while nothing is due and nothing runs

    @property
    def running(self) -> int:
        return len(self._running)

    def start(self) -> None:
        """Begin claiming jobs. With ``concurrency`` 0 it claims none and only keeps the
        upkeep going (the queue's gauges stay on /metrics while `jobs work` runs the jobs)."""
        if self._dispatcher is not None:
            return
        self._stopping = False
        loop = self._dispatch() if self.concurrency > 0 else self._upkeep_only()
        self._dispatcher = asyncio.create_task(loop, name="jobs-dispatcher")
        log.info("jobs_worker_started", worker=self.name, concurrency=self.concurrency)

    async def stop(self, drain_seconds: float) -> None:
        """Stop claiming; let running jobs finish within ``drain_seconds``, then release the
        rest to other workers."""
        if self._dispatcher is None:
            return
        self._stopping = True
        self._dispatcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._dispatcher
        self._dispatcher = None
        if self._running:
            _, unfinished = await asyncio.wait(set(self._running), timeout=drain_seconds)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        log.info("jobs_worker_stopped", worker=self.name)

    # ---- dispatching ------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        next_upkeep = 0.0
        while not self._stopping:
            wait = self.queue.settings.poll_interval_seconds
            try:
                if time.monotonic() >= next_upkeep:
                    next_upkeep = time.monotonic() + UPKEEP_INTERVAL_SECONDS
                    await self.upkeep.run(scheduling=self.scheduling)
                free = self.concurrency - len(self._running)
                if free > 0:
                    jobs = await self.queue.claim(self.name, free)
                    for job in jobs:
                        self._spawn(job)
                    if len(jobs) == free:
                        continue
                    wait = await self._idle_wait()
            except Exception as exc:
                # The database is away (failover, restart): keep polling, quietly.
                log.warning("jobs_poll_failed", worker=self.name, error=type(exc).__name__)
            if not self._running:
                self.idle.set()
            await self.queue.wait(wait)

    async def _upkeep_only(self) -> None:
        while not self._stopping:
            try:
                await self.upkeep.run(scheduling=self.scheduling)
            except Exception as exc:
                log.warning("jobs_upkeep_failed", worker=self.name, error=type(exc).__name__)
            await asyncio.sleep(UPKEEP_INTERVAL_SECONDS)

    async def _idle_wait(self) -> float:
        """Until the next job becomes due, at most the poll interval (other processes enqueue
        without waking us)."""
        poll = self.queue.settings.poll_interval_seconds
        due = await self.queue.next_due()
        if due is None:
            return poll
        seconds = (due - self.queue.clock()).total_seconds()
        # Due already but not claimable by us: another worker holds it or is taking it.
        return poll if seconds <= 0 else max(MIN_WAIT_SECONDS, min(seconds, poll))

    def _spawn(self, job: Job) -> None:
        self.idle.clear()
        task = asyncio.create_task(self._run(job), name=f"job-{job.kind}-{job.id}")
        self._running[task] = job
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self.queue.wake()  # a slot is free

    # ---- running one job --------------------------------------------------------------------

    async def _run(self, job: Job) -> None:
        spec = self.queue.kinds.get(job.kind)
        timeout = spec.timeout_seconds or self.queue.settings.job_timeout_seconds
        runner = asyncio.current_task()
        assert runner is not None
        beat = asyncio.create_task(self._heartbeat(job, runner), name=f"job-lease-{job.id}")
        started = time.perf_counter()
        outcome = "success"
        try:
            with (
                tracing.attached(tracing.context_of(job.traceparent)),
                tracing.span(f"job {job.kind}", {"job.kind": job.kind}),
            ):
                async with asyncio.timeout(timeout):
                    await spec.handler(job)
        except asyncio.CancelledError:
            outcome = await self._interrupted(job, runner)
            if outcome == "released":
                raise
        except Exception as exc:
            outcome = await self._failed(job, exc, permanent=isinstance(exc, PermanentFailure))
        else:
            outcome = "lost"  # unless the record lands (a stop may cancel its retries)
            outcome = await self._finish(job)
        finally:
            beat.cancel()
            metrics.JOB_RUNS.labels(job.kind, outcome).inc()
            metrics.JOB_DURATION.labels(job.kind).observe(time.perf_counter() - started)
            self._lost.discard(job.id)

    async def _record(self, job: Job, stage: str, write: Callable[[], Awaitable[T]]) -> T:
        """Record an outcome, retrying while the database refuses it (a full disk, a failover)
        for as long as the lease would still be ours: the effect has happened, and a record
        that lands late is better than the job running again. Raises the last error after."""
        deadline = time.monotonic() + self.queue.settings.lease_seconds
        pause = 0.05
        while True:
            try:
                return await write()
            except Exception as exc:
                if time.monotonic() + pause >= deadline:
                    raise
                log.warning(
                    "job_record_retrying",
                    job_id=str(job.id),
                    stage=stage,
                    error=type(exc).__name__,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    async def _finish(self, job: Job) -> str:
        try:
            held = await self._record(job, "complete", lambda: self.queue.complete(job, self.name))
        except Exception as exc:
            # The effect happened; the lease will expire and the job run again (at least once).
            log.error("job_complete_failed", job_id=str(job.id), error=type(exc).__name__)
            return "lost"
        if not held:
            log.warning("job_lease_lost", job_id=str(job.id), kind=job.kind, stage="complete")
            return "lost"
        log.info("job_done", job_id=str(job.id), kind=job.kind, attempt=job.attempt)
        return "success"

    async def _failed(self, job: Job, exc: Exception, *, permanent: bool) -> str:
        error = describe(exc)
        try:
            state = await self._record(
                job, "fail", lambda: self.queue.fail(job, self.name, error, permanent=permanent)
            )
        except Exception as db_exc:
            log.error("job_fail_failed", job_id=str(job.id), error=type(db_exc).__name__)
            return "lost"
        if state is None:
            log.warning("job_lease_lost", job_id=str(job.id), kind=job.kind, stage="fail")
            return "lost"
        fields = {"job_id": str(job.id), "kind": job.kind, "attempt": job.attempt}
        if state is JobState.dead:
            log.error("job_dead", **fields, max_attempts=job.max_attempts, error=error)
            on_dead = self.queue.kinds.get(job.kind).on_dead
            if on_dead is not None:
                on_dead(job.id, error)
            return "dead"
        log.warning("job_failed", **fields, max_attempts=job.max_attempts, error=error)
        return "retry"

    async def _interrupted(self, job: Job, runner: asyncio.Task[None]) -> str:
        if job.id in self._lost:
            return "lost"  # another worker has it now: leave the row alone
        # Shutting down: hand the job back. The cancellation is ours; let the release run.
        runner.uncancel()
        try:
            await self.queue.release(job, self.name)
        except Exception as exc:
            log.error("job_release_failed", job_id=str(job.id), error=type(exc).__name__)
        log.info("job_released", job_id=str(job.id), kind=job.kind)
        return "released"

    async def _heartbeat(self, job: Job, runner: asyncio.Task[None]) -> None:
        """Renew the lease every third of it; cancel the job when another worker took it."""
        while True:
            await asyncio.sleep(self.queue.settings.lease_seconds / 3)
            try:
                held = await self.queue.heartbeat(job, self.name)
            except Exception as exc:
                log.warning("job_heartbeat_failed", job_id=str(job.id), error=type(exc).__name__)
                continue
            if not held:
                self._lost.add(job.id)
                log.warning("job_lease_lost", job_id=str(job.id), kind=job.kind, stage="run")
                runner.cancel()
                return
