"""Temporary lockout with exponential backoff after failed credential checks.

Every failure counts in two places (ADR 0013):

- the **network** counter of (tenant, normalised email, client network): the client's IPv4
  /24 or IPv6 /64 (``lockout.ipv4_prefix`` / ``ipv6_prefix``). It locks after
  ``lockout.threshold`` failures, and only for that network: an attacker who keeps failing
  locks themselves out, not the owner signing in from elsewhere;
- the **account** counter of (tenant, normalised email), every network together, with a much
  higher ``lockout.account_threshold``: the backstop against guessing spread over many
  networks. A password reset clears it, so even that lock does not need the attacker to stop.

Keys are digests computed whether or not an account exists, so the lockout behaves
identically for unknown emails and cannot be used to enumerate accounts, and the store holds
no email address. Locks are always temporary (capped at ``max_seconds``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

import structlog
from redis.asyncio import Redis

from auth_service.config.settings import LockoutSettings
from auth_service.security.fallback import SharedWithFallback

log = structlog.get_logger(__name__)


class Scope(StrEnum):
    """Which counter a lock is on (the value is the name in audit details)."""

    network = "network"
    account = "account"


@dataclass(frozen=True)
class LockKeys:
    """The two counters one attempt is counted in (digests, never the email)."""

    network: str
    account: str

    def of(self, scope: Scope) -> str:
        return self.network if scope is Scope.network else self.account


def client_network(settings: LockoutSettings, ip: str | None) -> str:
    """The network a client is counted in: its address cut to the configured prefix (an
    IPv4-mapped IPv6 address counts as IPv4); ``unknown`` without a usable address."""
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = settings.ipv4_prefix if address.version == 4 else settings.ipv6_prefix
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def lock_keys(settings: LockoutSettings, tenant_id: str, email: str, ip: str | None) -> LockKeys:
    """The counters of an attempt on ``email`` from ``ip`` (whether the account exists or not)."""
    return LockKeys(
        network=_digest(tenant_id, email, client_network(settings, ip)),
        account=_digest(tenant_id, email),
    )


def threshold(settings: LockoutSettings, scope: Scope) -> int:
    return settings.threshold if scope is Scope.network else settings.account_threshold


def lock_seconds(settings: LockoutSettings, failures: int, scope: Scope) -> float:
    """How long ``failures`` on a counter of ``scope`` lock it: nothing below the threshold,
    then ``base_seconds`` doubling with each further failure, capped at ``max_seconds``."""
    limit = threshold(settings, scope)
    if failures < limit:
        return 0.0
    exponent = min(failures - limit, 32)
    return float(min(settings.base_seconds * (2**exponent), settings.max_seconds))


class LockoutStore(ABC):
    def __init__(self, settings: LockoutSettings) -> None:
        self.settings = settings

    @abstractmethod
    async def locked_for(self, *keys: LockKeys) -> float:
        """Seconds until no counter of these attempts is locked (0 when none is); one round
        trip however many (a second factor checks the password's and its own)."""

    @abstractmethod
    async def record_failure(self, keys: LockKeys) -> dict[Scope, float]:
        """Count a failure on both counters; the locks it started, by scope, in seconds."""

    @abstractmethod
    async def reset(self, *keys: str) -> None:
        """Forget the failures of these counters (a successful check, a password reset)."""


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

    async def locked_for(self, *keys: LockKeys) -> float:
        until = max(self._get(k.of(scope))[1] for k in keys for scope in Scope)
        return max(0.0, until - time.monotonic())

    async def record_failure(self, keys: LockKeys) -> dict[Scope, float]:
        started: dict[Scope, float] = {}
        now = time.monotonic()
        for scope in Scope:
            key = keys.of(scope)
            failures, locked_until, _ = self._get(key)
            failures += 1
            seconds = lock_seconds(self.settings, failures, scope)
            if seconds:
                locked_until = now + seconds
                started[scope] = seconds
            self._entries[key] = (failures, locked_until, now)
            self._entries.move_to_end(key)
        while len(self._entries) > self.MAX_ENTRIES:
            self._entries.popitem(last=False)
        return started

    async def reset(self, *keys: str) -> None:
        for key in keys:
            self._entries.pop(key, None)


# Both counters in one round trip: each hash gets its failure count and a fresh TTL.
_RECORD_FAILURE = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('HINCRBY', key, 'failures', 1)
  redis.call('PEXPIRE', key, ARGV[1])
end
return counts
"""

# The later lock end of the counters ('' when none is locked), in one round trip.
_LOCKED_UNTIL = """
local latest = ''
for _, key in ipairs(KEYS) do
  local ends = redis.call('HGET', key, 'locked_until')
  if ends and (latest == '' or tonumber(ends) > tonumber(latest)) then latest = ends end
end
return latest
"""


class RedisLockoutStore(LockoutStore):
    """Lockout state in Redis, shared by every worker and replica; counted in this process
    while Redis is unreachable (security.fallback, ADR 0014)."""

    PREFIX = "auth:lockout:"

    def __init__(self, settings: LockoutSettings, redis: Redis) -> None:
        super().__init__(settings)
        self._redis = redis
        self._record = redis.register_script(_RECORD_FAILURE)
        self._locked_until = redis.register_script(_LOCKED_UNTIL)
        self._local_store = MemoryLockoutStore(settings)
        self._shared = SharedWithFallback("lockout", on_recovery=self._forget_local)

    def _names(self, *keys: LockKeys) -> list[str]:
        return [self.PREFIX + k.of(scope) for k in keys for scope in Scope]

    def _local(self) -> MemoryLockoutStore:
        # Hot reload replaces ``settings`` on this store; the stand-in follows.
        self._local_store.settings = self.settings
        return self._local_store

    async def _forget_local(self) -> None:
        self._local_store = MemoryLockoutStore(self.settings)

    async def locked_for(self, *keys: LockKeys) -> float:
        return await self._shared.run(
            lambda: self._shared_locked_for(*keys), lambda: self._local().locked_for(*keys)
        )

    async def record_failure(self, keys: LockKeys) -> dict[Scope, float]:
        return await self._shared.run(
            lambda: self._shared_record_failure(keys),
            lambda: self._local().record_failure(keys),
        )

    async def reset(self, *keys: str) -> None:
        await self._local().reset(*keys)
        await self._shared.shared_only(
            lambda: self._redis.delete(*(self.PREFIX + key for key in keys))
        )

    async def _shared_locked_for(self, *keys: LockKeys) -> float:
        until = await self._locked_until(keys=self._names(*keys))
        if not until:
            return 0.0
        return max(0.0, float(until) - time.time())

    async def _shared_record_failure(self, keys: LockKeys) -> dict[Scope, float]:
        ttl_ms = int(self.settings.reset_after_seconds * 1000)
        counts = cast(list[Any], await self._record(keys=self._names(keys), args=[ttl_ms]))
        started = {
            scope: seconds
            for scope, count in zip(Scope, counts, strict=True)
            if (seconds := lock_seconds(self.settings, int(count), scope))
        }
        if started:
            now = time.time()
            async with self._redis.pipeline(transaction=False) as pipe:
                for scope, seconds in started.items():
                    pipe.hset(self.PREFIX + keys.of(scope), "locked_until", str(now + seconds))
                await pipe.execute()
        return started
