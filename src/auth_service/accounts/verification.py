"""Email verification: the emailed link, spending its token, sending it again."""

from __future__ import annotations

import uuid

from sqlalchemy import update

from auth_service.accounts import onetime
from auth_service.accounts.deps import AccountDeps
from auth_service.accounts.errors import InvalidOneTimeToken, UserNotFound
from auth_service.accounts.identity import Identity, IdentityReader
from auth_service.accounts.models import User
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.db.base import utcnow
from auth_service.mail import templates
from auth_service.observability import metrics
from auth_service.security.ratelimit import Limiter


class EmailVerification:
    def __init__(self, deps: AccountDeps, identities: IdentityReader) -> None:
        self._deps = deps
        self._identities = identities

    def link(self, owner: Identity | None) -> onetime.Notice:
        """A verification link for ``owner`` (a decoy row and no mail for None): its writes,
        for the caller to run with its own, and the mail to send once they are stored."""
        deps = self._deps
        ttl = deps.settings.tokens.email_verification_ttl_seconds
        issued = onetime.issue(
            user_id=owner.id if owner else None,
            tenant_id=owner.tenant_id if owner else deps.tenant_id,
            purpose=onetime.Purpose.email_verify,
            ttl_seconds=ttl,
        )
        message = templates.verification_email(
            deps.settings.links_base_url,
            issued.token,
            ttl // 3600,
            deps.language(owner.locale if owner else None),
        )
        return onetime.Notice(owner.email if owner else None, message, issued.writes)

    async def verify(self, token: str, ctx: RequestContext) -> None:
        """Spend a verification token and mark the address verified.

        Raises RateLimited or InvalidOneTimeToken.
        """
        await self._deps.guard.count(Limiter.ip_verify, ctx.ip or "unknown", ctx)
        async with self._deps.db.transaction() as s:
            try:
                user_id = await onetime.consume(s, token, onetime.Purpose.email_verify)
            except InvalidOneTimeToken:
                metrics.EMAIL_VERIFICATIONS.labels("invalid").inc()
                raise
            await s.execute(
                update(User)
                .where(User.id == user_id, User.email_verified_at.is_(None))
                .values(email_verified_at=utcnow(), updated_at=utcnow())
            )
        await self._deps.user_changed(user_id)
        metrics.EMAIL_VERIFICATIONS.labels("success").inc()
        await self._deps.audit.record(events.EMAIL_VERIFIED, ctx, subject=user_id)

    async def resend(self, user_id: uuid.UUID, ctx: RequestContext) -> None:
        """Send a new link (the older one stops working); no mail when already verified.

        Verified or not, the same statements run (the lookup, then a token row: a decoy
        when verified), so the time of the answer says nothing either (ADR 0011).
        Raises RateLimited or UserNotFound.
        """
        await self._deps.guard.count(Limiter.ip_verify, ctx.ip or "unknown", ctx)
        user = await self._identities.identity(user_id)
        if user is None:
            raise UserNotFound
        notice = self.link(user if user.email_verified_at is None else None)
        deps = self._deps
        await deps.db.write_together(*notice.writes, notice.mail_job(deps.mail, deps.tenant_id))
        deps.mail.wake()
