"""Password recovery: the emailed reset link and setting a new password with it."""

from __future__ import annotations

from sqlalchemy import select

from auth_service.accounts import onetime
from auth_service.accounts.credentials import Credentials
from auth_service.accounts.deps import AccountDeps
from auth_service.accounts.emails import normalize_email
from auth_service.accounts.errors import (
    FeatureDisabled,
    InvalidEmail,
    InvalidOneTimeToken,
    WeakPassword,
)
from auth_service.accounts.identity import UserStatus
from auth_service.accounts.models import User
from auth_service.accounts.policy import TOO_LONG, Reason, too_long
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.mail import templates
from auth_service.observability import metrics
from auth_service.security.ratelimit import Limiter


class PasswordRecovery:
    def __init__(self, deps: AccountDeps, credentials: Credentials) -> None:
        self._deps = deps
        self._credentials = credentials

    def _require_feature(self) -> None:
        if not self._deps.settings.features.password_reset:
            raise FeatureDisabled("password_reset")

    async def forgot_password(self, email: str, ctx: RequestContext) -> None:
        """Send a reset link if the account exists; behave identically if it does not.

        Raises FeatureDisabled or RateLimited.
        """
        self._require_feature()
        deps = self._deps
        await deps.guard.count(Limiter.ip_forgot, ctx.ip or "unknown", ctx)
        try:
            normalized = normalize_email(email)
        except InvalidEmail:
            return
        await deps.guard.count(Limiter.account_forgot, normalized, ctx)
        metrics.PASSWORD_RESETS.labels("requested").inc()
        ttl = deps.settings.tokens.password_reset_ttl_seconds
        async with deps.db.transaction() as s:
            user = (
                await s.execute(
                    select(User.id, User.tenant_id, User.email, User.status, User.locale).where(
                        User.tenant_id == deps.tenant_id, User.email == normalized
                    )
                )
            ).first()
            token = None
            if user is not None and user.status == UserStatus.active:
                token = await onetime.issue(
                    s,
                    user_id=user.id,
                    tenant_id=user.tenant_id,
                    purpose=onetime.Purpose.password_reset,
                    ttl_seconds=ttl,
                )
                mail = templates.password_reset_email(
                    deps.settings.links_base_url, token, ttl // 60, deps.language(user.locale)
                )
                await deps.mail.send(user.email, mail.subject, mail.text, session=s)
        await deps.audit.record(
            events.PASSWORD_RESET_REQUESTED,
            ctx,
            subject=user.id if user else None,
            outcome="success" if token else "ignored",
        )

    async def reset_password(self, token: str, new_password: str, ctx: RequestContext) -> None:
        """Set a new password with a single-use reset token; every session is revoked and
        the lockout of the account is cleared.

        Raises FeatureDisabled, RateLimited, WeakPassword or InvalidOneTimeToken.
        """
        self._require_feature()
        deps = self._deps
        await deps.guard.count(Limiter.ip_reset, ctx.ip or "unknown", ctx)
        if too_long(new_password, deps.settings.passwords):
            raise WeakPassword([Reason(TOO_LONG, max=deps.settings.passwords.max_length)])
        # Check the policy before spending the token, so a weak choice can be corrected.
        try:
            holder = await onetime.holder(deps.db, token, onetime.Purpose.password_reset)
        except InvalidOneTimeToken:
            metrics.PASSWORD_RESETS.labels("invalid").inc()
            raise
        deps.enforce_password_policy(new_password, holder.email)
        async with deps.db.transaction() as s:
            try:
                user_id = await onetime.consume(s, token, onetime.Purpose.password_reset)
            except InvalidOneTimeToken:
                metrics.PASSWORD_RESETS.labels("invalid").inc()
                raise
        await self._credentials.set_password(user_id, new_password)
        await deps.guard.reset(deps.guard.lock_id(deps.tenant_id, holder.email))
        await deps.revoker.revoke_user_sessions(user_id, reason="password_reset")
        metrics.PASSWORD_RESETS.labels("completed").inc()
        await deps.audit.record(events.PASSWORD_RESET, ctx, subject=user_id)
