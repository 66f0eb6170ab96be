"""Password recovery: the emailed reset link and setting a new password with it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError

from auth_service.accounts import onetime
from auth_service.accounts.credentials import Credentials
from auth_service.accounts.deps import AccountDeps
from auth_service.accounts.emails import normalize_email
from auth_service.accounts.errors import (
    FeatureDisabled,
    InvalidEmail,
    InvalidOneTimeToken,
    UserDisabled,
    UserNotFound,
    WeakPassword,
)
from auth_service.accounts.identity import Identity, IdentityReader
from auth_service.accounts.policy import TOO_LONG, Reason, too_long
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.mail import templates
from auth_service.mail.templates import Rendered
from auth_service.observability import metrics
from auth_service.security.ratelimit import Limiter


class PasswordRecovery:
    def __init__(
        self, deps: AccountDeps, credentials: Credentials, identities: IdentityReader
    ) -> None:
        self._deps = deps
        self._credentials = credentials
        self._identities = identities

    def _require_feature(self) -> None:
        if not self._deps.settings.features.password_reset:
            raise FeatureDisabled("password_reset")

    async def forgot_password(self, email: str, ctx: RequestContext) -> None:
        """Send a reset link if an active account has this email; otherwise do the same work
        and send nothing (ADR 0011).

        Both answers run the same statements before the response: the account lookup, then
        one write of a token row with the audit event (a decoy row, never spendable, when
        there is no active account), so neither the status nor the time tells whether the
        account exists. Raises FeatureDisabled or RateLimited.
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
        user = await self._identities.by_email(deps.tenant_id, normalized)
        owner = user if user is not None and user.active else None
        notice = self.reset_link(owner)
        audit = deps.audit.prepare(
            events.PASSWORD_RESET_REQUESTED,
            ctx,
            subject=user.id if user else None,
            outcome="success" if owner else "ignored",
        )
        await deps.db.write_together(
            *notice.writes, notice.mail_job(deps.mail, deps.tenant_id), *deps.audit.stores(audit)
        )
        deps.audit.emit(audit)
        deps.mail.wake()

    def reset_link(
        self,
        owner: Identity | None,
        template: Callable[[str, str, int, str], Rendered] = templates.password_reset_email,
    ) -> onetime.Notice:
        """A reset link for ``owner`` in a mail of ``template`` (a decoy row and no mail for
        None): its writes, for the caller to run with its own, and the mail to send once
        they are stored."""
        deps = self._deps
        ttl = deps.settings.tokens.password_reset_ttl_seconds
        issued = onetime.issue(
            user_id=owner.id if owner else None,
            tenant_id=deps.tenant_id,
            purpose=onetime.Purpose.password_reset,
            ttl_seconds=ttl,
        )
        # Rendered for the decoy too: the same work either way.
        language = deps.language(owner.locale if owner else None)
        message = template(deps.settings.links_base_url, issued.token, ttl // 60, language)
        return onetime.Notice(owner.email if owner else None, message, issued.writes)

    async def reset_password(self, token: str, new_password: str, ctx: RequestContext) -> None:
        """Set a new password with a single-use reset token; every session is revoked, the
        lockout of the account is cleared, and the address counts as verified (the link
        proved the mailbox: it also hands a squatted, unverified account to the address's
        real owner, ADR 0011).

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
        await self._credentials.set_password(user_id, new_password, mailbox_proven=True)
        await deps.guard.clear(deps.guard.lock_keys(deps.tenant_id, holder.email, ctx))
        await deps.revoker.revoke_user_sessions(user_id, reason="password_reset")
        metrics.PASSWORD_RESETS.labels("completed").inc()
        await deps.audit.record(events.PASSWORD_RESET, ctx, subject=user_id)

    async def send_reset_link(self, user_id: uuid.UUID, ctx: RequestContext) -> None:
        """Mail the user the reset link of ``forgot_password`` because an operator asked
        (admin API, CLI), without its rate limits. Older unused links stop working.

        Raises FeatureDisabled, UserNotFound or UserDisabled (a disabled account gets no
        link, as with forgot-password: enable it first).
        """
        self._require_feature()
        deps = self._deps
        user = await self._identities.identity(user_id)
        if user is None:
            raise UserNotFound
        if not user.active:
            raise UserDisabled
        notice = self.reset_link(user)
        audit = deps.audit.prepare(events.ADMIN_PASSWORD_RESET_SENT, ctx, subject=user_id)
        try:
            await deps.db.write_together(
                *notice.writes,
                notice.mail_job(deps.mail, deps.tenant_id),
                *deps.audit.stores(audit),
            )
        except IntegrityError:
            raise UserNotFound from None  # deleted since it was read: its token has no owner
        deps.audit.emit(audit)
        deps.mail.wake()
        metrics.PASSWORD_RESETS.labels("requested").inc()

    async def set_password(self, user: Identity, new_password: str, ctx: RequestContext) -> None:
        """An operator sets the password directly (CLI ``users reset --password-stdin``):
        the policy applies, and as after a reset by link every session is revoked and the
        account-wide lockout cleared. Raises WeakPassword."""
        deps = self._deps
        if too_long(new_password, deps.settings.passwords):
            raise WeakPassword([Reason(TOO_LONG, max=deps.settings.passwords.max_length)])
        deps.enforce_password_policy(new_password, user.email)
        await self._credentials.set_password(user.id, new_password)
        await deps.guard.clear(deps.guard.lock_keys(deps.tenant_id, user.email, ctx))
        await deps.revoker.revoke_user_sessions(user.id, reason="password_set")
        await deps.audit.record(events.ADMIN_PASSWORD_SET, ctx, subject=user.id)
