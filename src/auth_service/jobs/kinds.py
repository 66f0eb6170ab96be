"""Job kinds: a kind name and the handler that runs its jobs, registered by the package that
owns the work (mail registers ``mail``; webhooks and back-channel logout add theirs).

    async def deliver(job: Job) -> None: ...            # raise to retry, PermanentFailure to stop
    jobs.register(JobKind("webhook", deliver, sealed=True))

A handler runs at least once per job, so it must be safe to run again: pass ``job.key`` (or
something derived from it) to the receiver as the idempotency key of its effect.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class JobState(StrEnum):
    queued = "queued"  # waiting for its run_at
    running = "running"  # claimed by a worker until locked_until (its lease)
    done = "done"
    dead = "dead"  # out of attempts or failed permanently: waits for an operator
    discarded = "discarded"  # an operator gave up on a dead job


PENDING_STATES = (JobState.queued, JobState.running)
FINISHED_STATES = (JobState.done, JobState.discarded)


@dataclass(frozen=True)
class Job:
    """A claimed job, as its handler sees it."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    kind: str
    key: str
    payload: dict[str, Any]
    attempt: int  # 1 for the first run
    max_attempts: int
    created_at: datetime
    traceparent: str | None = None

    @property
    def final_attempt(self) -> bool:
        """A failure now makes the job dead."""
        return self.attempt >= self.max_attempts


class Handler(Protocol):
    """Runs one job. Returning means done; raising means retry with backoff (or dead when
    attempts are spent); PermanentFailure means dead at once."""

    def __call__(self, job: Job) -> Awaitable[None]: ...


class PermanentFailure(Exception):
    """The job can never succeed (a refused recipient, a deleted subscription): retrying
    would only repeat the failure, so it goes straight to the dead letters."""


@dataclass(frozen=True)
class JobKind:
    """What runs the jobs of one kind, and how they are retried.

    ``sealed``: the payload is secret (mail bodies carry one-time links): stored encrypted
    under the master key, never shown by the admin API, deleted once the job is done.
    ``max_attempts``, ``backoff_base_seconds`` and ``timeout_seconds`` override the ``jobs``
    settings for this kind. ``on_dead`` is told when a job of the kind goes dead (a metric,
    a delivery log).
    """

    name: str
    handler: Handler
    sealed: bool = False
    max_attempts: int | None = None
    backoff_base_seconds: float | None = None
    timeout_seconds: float | None = None
    on_dead: Callable[[uuid.UUID, str], None] | None = None


class UnknownJobKind(LookupError):
    """Enqueueing a kind nobody registered: a programming error, never a user's."""


class JobKinds:
    """The registry: kind name -> JobKind. A worker claims only kinds it knows, so a replica
    of an older release never takes a job a newer one enqueued."""

    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}

    def register(self, kind: JobKind) -> None:
        """Add a kind; registering a name twice is a programming error."""
        if not kind.name or len(kind.name) > 64:
            raise ValueError("a job kind name has 1 to 64 characters")
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> JobKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownJobKind(name) from None

    def names(self) -> list[str]:
        return sorted(self._kinds)


def backoff_seconds(
    attempts: int, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Delay before the next attempt after ``attempts`` failed ones: ``base * 2^(n-1)``
    capped at ``cap``, then "equal jitter" (a uniform draw from its upper half), so retries
    of jobs that failed together (an SMTP outage) spread out instead of arriving together."""
    delay = min(cap, base * 2.0 ** max(attempts - 1, 0))
    return delay / 2 + delay / 2 * rng()
