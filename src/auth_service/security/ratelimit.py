"""Named rate limiters (``ip.login``, ``account.login``...) over the `limits` library.

Moving windows in Redis when it is configured (shared by every worker and replica), in memory
for the embedded default, and in this process's memory while Redis is unreachable
(security.fallback, ADR 0014). Limits are checked before any password is hashed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from auth_service.config.settings import RateLimitSettings
from auth_service.observability import metrics
from auth_service.problems import ServiceError, problem
from auth_service.security.fallback import SharedWithFallback
from auth_service.security.redis_connect import limits_storage_args


class Limiter(StrEnum):
    """The named limiters: what is counted (per client IP or per account) and for which flow.

    The value is the name in metrics, audit details and storage keys.
    """

    ip_login = "ip.login"
    account_login = "account.login"
    ip_register = "ip.register"
    ip_forgot = "ip.forgot"
    account_forgot = "account.forgot"
    ip_reset = "ip.reset"
    ip_refresh = "ip.refresh"
    ip_verify = "ip.verify"
    ip_device_code = "ip.device_code"
    session_device_code = "session.device_code"


# limiter -> the RateLimitSettings attribute that holds its limit
LIMITERS: dict[Limiter, str] = {
    Limiter.ip_login: "login_per_ip",
    Limiter.account_login: "login_per_account",
    Limiter.ip_register: "register_per_ip",
    Limiter.ip_forgot: "forgot_per_ip",
    Limiter.account_forgot: "forgot_per_account",
    Limiter.ip_reset: "reset_per_ip",
    Limiter.ip_refresh: "refresh_per_ip",
    Limiter.ip_verify: "verify_per_ip",
    Limiter.ip_device_code: "device_code_per_network",
    Limiter.session_device_code: "device_code_per_session",
}


@problem(429, "rate-limited", "Too many requests; slow down")
class RateLimited(ServiceError):
    """A named rate limiter is full (docs/security.md, rate limits); `Retry-After` is set."""

    def __init__(self, limiter: Limiter, retry_after_seconds: int) -> None:
        super().__init__(limiter)
        self.limiter = limiter
        self.retry_after_seconds = retry_after_seconds


def parse_limits(settings: RateLimitSettings) -> dict[Limiter, RateLimitItem]:
    items: dict[Limiter, RateLimitItem] = {}
    for name, attr in LIMITERS.items():
        text = getattr(settings, attr)
        try:
            items[name] = parse(text)
        except ValueError:
            raise ValueError(
                f"rate_limits.{attr}: cannot parse {text!r} (try '30/minute')"
            ) from None
    return items


@dataclass
class RateLimiter:
    settings: RateLimitSettings
    storage: Storage

    def __post_init__(self) -> None:
        self._items = parse_limits(self.settings)
        self._strategy = MovingWindowRateLimiter(self.storage)
        # Redis outages: the windows are counted in this process meanwhile (ADR 0014).
        self._local_storage = MemoryStorage()
        self._local = MovingWindowRateLimiter(self._local_storage)
        self._shared = (
            None
            if isinstance(self.storage, MemoryStorage)
            else SharedWithFallback("rate_limits", on_recovery=self._forget_local)
        )

    async def _forget_local(self) -> None:
        await self._local_storage.reset()

    @classmethod
    def create(
        cls, settings: RateLimitSettings, redis_url: str | None, ca_cert: Path | None = None
    ) -> RateLimiter:
        use_redis = settings.storage == "redis" or (settings.storage == "auto" and redis_url)
        if use_redis:
            if not redis_url:
                raise ValueError("rate_limits.storage is redis but redis.url is not set")
            # The same Redis, TLS and Sentinel as the service's own client (redis_connect).
            uri, options = limits_storage_args(redis_url, ca_cert)
            built = storage_from_string(uri, implementation="redispy", **options)
            assert isinstance(built, Storage)
            storage = built
        else:
            storage = MemoryStorage()
        return cls(settings, storage)

    def apply_settings(self, settings: RateLimitSettings) -> None:
        """Hot reload: new limits apply to the next hit; counted windows are kept."""
        items = parse_limits(settings)
        self.settings, self._items = settings, items

    @property
    def backend(self) -> str:
        return "memory" if isinstance(self.storage, MemoryStorage) else "redis"

    async def hit(self, limiter: Limiter, key: str) -> None:
        """Count one attempt; raise RateLimited when the window is full.

        While Redis is unreachable the window is counted in this process instead (ADR 0014):
        refusing every login because a cache is down would turn a cache outage into an
        identity outage, and letting every attempt through would leave guessing unbounded.
        """
        if not self.settings.enabled:
            return
        item = self._items[limiter]
        if self._shared is None:
            retry = await _count(self._strategy, item, limiter, key)
        else:
            retry = await self._shared.run(
                lambda: _count(self._strategy, item, limiter, key),
                lambda: _count(self._local, item, limiter, key),
            )
        if retry is not None:
            metrics.RATE_LIMITED.labels(limiter.value).inc()
            raise RateLimited(limiter, retry)

    async def clear(self, limiter: Limiter, key: str) -> None:
        item = self._items[limiter]
        await self._local.clear(item, limiter.value, key)
        if self._shared is not None:
            await self._shared.shared_only(lambda: self._strategy.clear(item, limiter.value, key))

    async def reset_all(self) -> None:
        await self._local_storage.reset()
        await self.storage.reset()


async def _count(
    strategy: MovingWindowRateLimiter, item: RateLimitItem, limiter: Limiter, key: str
) -> int | None:
    """Count one hit in ``strategy``'s storage; the seconds until a slot frees when the
    window is full, None when the hit was allowed."""
    if await strategy.hit(item, limiter.value, key):
        return None
    stats = await strategy.get_window_stats(item, limiter.value, key)
    return max(1, math.ceil(stats.reset_time - time.time()))
