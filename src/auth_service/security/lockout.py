"""Temporary lockout with exponential backoff after consecutive failed logins.

Keyed by a digest of (tenant, normalised email), whether or not an account exists, so the
lockout behaves identically for unknown emails and cannot be used to enumerate accounts.
Locks are always temporary (capped at ``max_seconds``) and a password reset clears them, so an
attacker can slow a victim down but never hold the account.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import Any, cast

import structlog
from redis.asyncio import Redis

from auth_service.config.settings import LockoutSettings
from auth_service.observability import metrics

log = structlog.get_logger(__name__)


def lockout_key(tenant_id: str, email: str) -> str:
    return hashlib.sha256(f"{tenant_id}\x00{email}".encode()).hexdigest()


def lock_seconds(settings: LockoutSettings, failures: int) -> float:
    if failures < settings.threshold:
        return 0.0
    exponent = min(failures - settings.threshold, 32)
    return float(min(settings.base_seconds * (2**exponent), settings.max_seconds))


class LockoutStore(ABC):
    def __init__(self, settings: LockoutSettings) -> None:
        self.settings = settings

    @abstractmethod
    async def locked_for(self, key: str) -> float:
        """Seconds the key stays locked (0 when not locked)."""

    @abstractmethod
    async def record_failure(self, key: str) -> float:
        """Count a failure; return the seconds of a lock that it started (0 for none)."""

    @abstractmethod
    async def reset(self, key: str) -> None:
        """Forget the failures (successful login, password reset)."""


class MemoryLockoutStore(LockoutStore):
    MAX_ENTRIES = 100_000

    def __init__(self, settings: LockoutSettings) -> None:
        super().__init__(settings)
        # key -> (failures, locked_until, last_failure)
        self._entries: OrderedDict[str, tuple[int, float, float]] = OrderedDict()

    def _get(self, key: str) -> tuple[int, float, float]:
        entry = self._entries.get(key)
        if entry is None:
            return (0, 0.0, 0.0)
        if time.monotonic() - entry[2] > self.settings.reset_after_seconds:
            del self._entries[key]
            return (0, 0.0, 0.0)
        return entry

    async def locked_for(self, key: str) -> float:
        return max(0.0, self._get(key)[1] - time.monotonic())

    async def record_failure(self, key: str) -> float:
        failures, locked_until, _ = self._get(key)
        failures += 1
        now = time.monotonic()
        seconds = lock_seconds(self.settings, failures)
        if seconds:
            locked_until = now + seconds
        self._entries[key] = (failures, locked_until, now)
        self._entries.move_to_end(key)
        while len(self._entries) > self.MAX_ENTRIES:
            self._entries.popitem(last=False)
        return seconds

    async def reset(self, key: str) -> None:
        self._entries.pop(key, None)


_RECORD_FAILURE = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return failures
"""


class RedisLockoutStore(LockoutStore):
    PREFIX = "auth:lockout:"

    def __init__(self, settings: LockoutSettings, redis: Redis) -> None:
        super().__init__(settings)
        self._redis = redis
        self._record = redis.register_script(_RECORD_FAILURE)

    async def locked_for(self, key: str) -> float:
        try:
            until = await self._redis.hget(self.PREFIX + key, "locked_until")
        except Exception as exc:
            return self._outage(exc)
        if until is None:
            return 0.0
        return max(0.0, float(until) - time.time())

    async def record_failure(self, key: str) -> float:
        name = self.PREFIX + key
        try:
            ttl_ms = int(self.settings.reset_after_seconds * 1000)
            failures = int(cast(Any, await self._record(keys=[name], args=[ttl_ms])))
            seconds = lock_seconds(self.settings, failures)
            if seconds:
                await self._redis.hset(name, "locked_until", str(time.time() + seconds))
        except Exception as exc:
            return self._outage(exc)
        return seconds

    async def reset(self, key: str) -> None:
        try:
            await self._redis.delete(self.PREFIX + key)
        except Exception as exc:
            self._outage(exc)

    @staticmethod
    def _outage(exc: Exception) -> float:
        # Fail open like the rate limiter: see ratelimit.RateLimiter.hit.
        metrics.REDIS_ERRORS.inc()
        log.warning("lockout_storage_error", error=type(exc).__name__)
        return 0.0
