"""Calls to the shared store (Redis) with an in-process stand-in while it is out (ADR 0014).

The rate limiter and the lockout keep their counts in Redis so every worker and replica sees
the same windows. When Redis cannot answer, failing open would let guessing run unbounded
and failing closed would turn a cache outage into a sign-in outage; instead each process
counts in its own memory until Redis answers again. Limits then hold per worker (N workers
allow N times the limit), which is what the embedded default does anyway.

After a failure the shared store is left alone for ``RETRY_SECONDS`` (a stopped or blackholed
Redis must not cost every request a connection attempt and its timeout); the first call
after that tries it again. The first failure of an outage logs one warning and the recovery
one info line; every failed call counts in ``auth_redis_errors_total``. When Redis is back
the in-process counts are dropped (``on_recovery``): they must not resurface, stale, in the
next outage.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from auth_service.observability import metrics

log = structlog.get_logger(__name__)

T = TypeVar("T")

RETRY_SECONDS = 1.0


class SharedWithFallback:
    """Runs each operation on the shared store, or on the in-process stand-in while the
    shared one is out. ``name`` says which store in logs (``rate_limits``, ``lockout``)."""

    def __init__(self, name: str, on_recovery: Callable[[], Awaitable[None]] | None = None) -> None:
        self.name = name
        self._on_recovery = on_recovery
        self._retry_at = 0.0
        self.degraded = False

    async def run(self, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]) -> T:
        """``shared()``; ``local()`` instead while the shared store is out."""
        if time.monotonic() >= self._retry_at:
            try:
                result = await shared()
            except Exception as exc:  # any failure of the store: see the module docstring
                self._failed(exc)
            else:
                if self.degraded:
                    await self._recovered()
                return result
        return await local()

    async def shared_only(self, operation: Callable[[], Awaitable[object]]) -> None:
        """``operation()`` on the shared store; nothing while it is out (forgetting state
        that the stand-in forgets on its own)."""
        await self.run(operation, _nothing)

    def _failed(self, exc: Exception) -> None:
        metrics.REDIS_ERRORS.inc()
        self._retry_at = time.monotonic() + RETRY_SECONDS
        if not self.degraded:
            self.degraded = True
            log.warning("redis_unavailable", store=self.name, error=type(exc).__name__)

    async def _recovered(self) -> None:
        self.degraded = False
        log.info("redis_recovered", store=self.name)
        if self._on_recovery is not None:
            await self._on_recovery()


async def _nothing() -> None:
    return None
