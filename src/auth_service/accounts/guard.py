"""Attempt limits for credential checks: rate limiters and the lockout, written once.

Every flow that checks a secret of the user (password sign-in, password change, and later
second factors) goes through one ``AttemptGuard``, so the limits, the lockout and their audit
events are the same whichever door an attacker knocks on.
"""

from __future__ import annotations

import uuid

from auth_service.accounts.errors import AccountLocked
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.config.settings import LockoutSettings
from auth_service.observability import metrics
from auth_service.security.lockout import LockoutStore, lockout_key
from auth_service.security.ratelimit import Limiter, RateLimited, RateLimiter


class AttemptGuard:
    def __init__(self, limiter: RateLimiter, lockout: LockoutStore, audit: AuditService) -> None:
        self._limiter = limiter
        self._lockout = lockout
        self._audit = audit

    @property
    def _settings(self) -> LockoutSettings:
        # The store holds the reloadable lockout settings; reading them here keeps one copy.
        return self._lockout.settings

    @staticmethod
    def lock_id(tenant_id: uuid.UUID, email: str) -> str:
        """The lockout key of an account (it exists or not: see security.lockout)."""
        return lockout_key(str(tenant_id), email)

    async def count(self, limiter: Limiter, key: str, ctx: RequestContext) -> None:
        """Count one attempt; raise RateLimited (and audit it) when the window is full."""
        try:
            await self._limiter.hit(limiter, key)
        except RateLimited:
            await self._audit.record(
                events.RATE_LIMITED, ctx, outcome="denied", details={"limiter": limiter.value}
            )
            raise

    async def ensure_unlocked(self, lock_id: str) -> None:
        """Raise AccountLocked while the account is locked (when lockout is enabled)."""
        if not self._settings.enabled:
            return
        remaining = await self._lockout.locked_for(lock_id)
        if remaining > 0:
            raise AccountLocked(max(1, int(remaining + 0.999)))

    async def record_failure(
        self, lock_id: str, user_id: uuid.UUID | None, ctx: RequestContext
    ) -> None:
        """Count a failed check toward the lockout; audit the lock it starts, if any."""
        if not self._settings.enabled:
            return
        locked = await self._lockout.record_failure(lock_id)
        if locked:
            metrics.LOCKOUTS.inc()
            await self._audit.record(
                events.ACCOUNT_LOCKED,
                ctx,
                outcome="denied",
                subject=user_id,
                details={"seconds": int(locked)},
            )

    async def reset(self, lock_id: str) -> None:
        """Forget the failures: a successful check, or a password reset."""
        await self._lockout.reset(lock_id)
