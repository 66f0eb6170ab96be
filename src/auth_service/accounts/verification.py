"""Email verification: the emailed link, spending its token, sending it again."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts import onetime
from auth_service.accounts.deps import AccountDeps
from auth_service.accounts.errors import InvalidOneTimeToken, UserNotFound
from auth_service.accounts.models import User
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.db.base import utcnow
from auth_service.mail import templates
from auth_service.observability import metrics
from auth_service.security.ratelimit import Limiter


class EmailVerification:
    def __init__(self, deps: AccountDeps) -> None:
        self._deps = deps

    async def send(self, s: AsyncSession, email: str, token: str, locale: str | None) -> None:
        """Queue the verification email carrying ``token``, in the user's language, inside
        the transaction ``s`` that issued the token."""
        settings = self._deps.settings
        ttl_hours = settings.tokens.email_verification_ttl_seconds // 3600
        mail = templates.verification_email(
            settings.links_base_url, token, ttl_hours, self._deps.language(locale)
        )
        await self._deps.mail.send(email, mail.subject, mail.text, session=s)

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
        metrics.EMAIL_VERIFICATIONS.labels("success").inc()
        await self._deps.audit.record(events.EMAIL_VERIFIED, ctx, subject=user_id)

    async def resend(self, user_id: uuid.UUID, ctx: RequestContext) -> None:
        """Send a new link (the older one stops working); nothing when already verified.

        Raises RateLimited or UserNotFound.
        """
        await self._deps.guard.count(Limiter.ip_verify, ctx.ip or "unknown", ctx)
        async with self._deps.db.transaction() as s:
            user = await s.get(User, user_id)
            if user is None:
                raise UserNotFound
            if user.email_verified_at is not None:
                return
            token = await onetime.issue(
                s,
                user_id=user.id,
                tenant_id=user.tenant_id,
                purpose=onetime.Purpose.email_verify,
                ttl_seconds=self._deps.settings.tokens.email_verification_ttl_seconds,
            )
            await self.send(s, user.email, token, user.locale)
