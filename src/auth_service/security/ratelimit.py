"""Named rate limiters (``ip.login``, ``account.login``...) over the `limits` library.

Moving windows in Redis when it is configured (shared by every worker and replica), in memory
for the embedded default. Limits are checked before any password is hashed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import StrEnum

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from auth_service.config.settings import RateLimitSettings
from auth_service.observability import metrics
from auth_service.problems import ServiceError, problem

log = structlog.get_logger(__name__)


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

    @classmethod
    def create(cls, settings: RateLimitSettings, redis_url: str | None) -> RateLimiter:
        use_redis = settings.storage == "redis" or (settings.storage == "auto" and redis_url)
        if use_redis:
            if not redis_url:
                raise ValueError("rate_limits.storage is redis but redis.url is not set")
            scheme, _, rest = redis_url.partition("://")
            built = storage_from_string(f"async+{scheme}://{rest}", implementation="redispy")
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

        When the shared store is unreachable we fail open (and count it): refusing every login
        because Redis is down would turn a cache outage into an identity outage. The per-account
        lockout and argon2 cost still bound guessing.
        """
        if not self.settings.enabled:
            return
        item = self._items[limiter]
        try:
            allowed = await self._strategy.hit(item, limiter.value, key)
            if allowed:
                return
            stats = await self._strategy.get_window_stats(item, limiter.value, key)
        except Exception as exc:  # storage outage: see docstring
            metrics.REDIS_ERRORS.inc()
            log.warning("rate_limit_storage_error", limiter=limiter.value, error=type(exc).__name__)
            return
        metrics.RATE_LIMITED.labels(limiter.value).inc()
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(limiter, retry)

    async def clear(self, limiter: Limiter, key: str) -> None:
        try:
            await self._strategy.clear(self._items[limiter], limiter.value, key)
        except Exception as exc:
            metrics.REDIS_ERRORS.inc()
            log.warning("rate_limit_storage_error", limiter=limiter.value, error=type(exc).__name__)

    async def reset_all(self) -> None:
        await self.storage.reset()
