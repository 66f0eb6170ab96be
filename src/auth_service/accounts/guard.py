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
from auth_service.security.lockout import LockKeys, LockoutStore, lock_keys
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

    def lock_keys(self, tenant_id: uuid.UUID, email: str, ctx: RequestContext) -> LockKeys:
        """The lockout counters of an attempt on ``email`` from the client of ``ctx``: this
        account from this network, and this account from anywhere (it exists or not: see
        security.lockout). ``keys.network`` also keys the per-account rate limiter, so an
        attacker fills only their own network's window, never the owner's."""
        return lock_keys(self._settings, str(tenant_id), email, ctx.ip)

    async def count(self, limiter: Limiter, key: str, ctx: RequestContext) -> None:
        """Count one attempt; raise RateLimited (and audit it) when the window is full."""
        try:
            await self._limiter.hit(limiter, key)
        except RateLimited:
            await self._audit.record(
                events.RATE_LIMITED, ctx, outcome="denied", details={"limiter": limiter.value}
            )
            raise

    async def ensure_unlocked(self, *keys: LockKeys) -> None:
        """Raise AccountLocked while any counter of these attempts is locked (when lockout is
        enabled); one round trip to the store."""
        if not self._settings.enabled:
            return
        remaining = await self._lockout.locked_for(*keys)
        if remaining > 0:
            raise AccountLocked(max(1, int(remaining + 0.999)))

    async def record_failure(
        self, keys: LockKeys, user_id: uuid.UUID | None, ctx: RequestContext
    ) -> None:
        """Count a failed check toward both counters; audit each lock it starts."""
        if not self._settings.enabled:
            return
        for scope, seconds in (await self._lockout.record_failure(keys)).items():
            metrics.LOCKOUTS.inc()
            await self._audit.record(
                events.ACCOUNT_LOCKED,
                ctx,
                outcome="denied",
                subject=user_id,
                details={"seconds": int(seconds), "scope": scope.value},
            )

    async def succeeded(self, *keys: LockKeys) -> None:
        """A successful check: forget this network's failures (of each attempt's counters, in
        one round trip). The account-wide count is kept: an attacker spread over many
        networks must not get a fresh budget each time the owner signs in (a password reset
        clears it, ``clear``)."""
        await self._lockout.reset(*(k.network for k in keys))

    async def clear(self, keys: LockKeys) -> None:
        """A password reset: forget the account-wide failures and the resetting network's."""
        await self._lockout.reset(keys.network, keys.account)
