"""Creating accounts: self-service registration and the operator's ``users create``."""

from __future__ import annotations

import uuid

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts import onetime
from auth_service.accounts.deps import AccountDeps
from auth_service.accounts.emails import normalize_email
from auth_service.accounts.errors import EmailTaken, FeatureDisabled, InvalidEmail, WeakPassword
from auth_service.accounts.identity import BuiltinRole, Identity, UserStatus
from auth_service.accounts.models import User, UserRole
from auth_service.accounts.roles import role_id
from auth_service.accounts.verification import EmailVerification
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.db.base import utcnow
from auth_service.observability import metrics
from auth_service.security.ratelimit import Limiter, RateLimited


class Registration:
    def __init__(self, deps: AccountDeps, verification: EmailVerification) -> None:
        self._deps = deps
        self._verification = verification

    async def register(
        self,
        email: str,
        password: str,
        name: str | None,
        ctx: RequestContext,
        *,
        locale: str | None = None,
    ) -> Identity:
        """Create an account and send the verification email (in ``locale``, the language
        the user registered in, kept for later emails).

        Raises FeatureDisabled, InvalidEmail, WeakPassword, EmailTaken or RateLimited.
        """
        deps = self._deps
        if not deps.settings.features.registration:
            raise FeatureDisabled("registration")
        try:
            await deps.guard.count(Limiter.ip_register, ctx.ip or "unknown", ctx)
        except RateLimited:
            metrics.REGISTRATIONS.labels("rate_limited").inc()
            raise
        try:
            normalized = normalize_email(email)
            deps.enforce_password_policy(password, normalized)
        except (InvalidEmail, WeakPassword):
            metrics.REGISTRATIONS.labels("invalid").inc()
            raise
        identity = _new_identity(deps.tenant_id, normalized, name, verified=False, locale=locale)
        password_hash = await deps.hasher.hash(password)
        try:
            async with deps.db.transaction() as s:
                await _insert_user(s, identity, password_hash)
                token = await onetime.issue(
                    s,
                    user_id=identity.id,
                    tenant_id=identity.tenant_id,
                    purpose=onetime.Purpose.email_verify,
                    ttl_seconds=deps.settings.tokens.email_verification_ttl_seconds,
                )
                await self._verification.send(s, normalized, token, locale)
        except IntegrityError:
            metrics.REGISTRATIONS.labels("conflict").inc()
            raise EmailTaken from None
        metrics.REGISTRATIONS.labels("success").inc()
        await deps.audit.record(events.USER_REGISTERED, ctx, subject=identity.id)
        return identity

    async def create_user(
        self, email: str, password: str, *, admin: bool, ctx: RequestContext, verified: bool = True
    ) -> Identity:
        """Operator path (CLI): no rate limits, no mail; the password policy still applies.

        Raises InvalidEmail, WeakPassword or EmailTaken.
        """
        deps = self._deps
        normalized = normalize_email(email)
        deps.enforce_password_policy(password, normalized)
        roles = (BuiltinRole.admin.value,) if admin else ()
        identity = _new_identity(deps.tenant_id, normalized, None, verified=verified, roles=roles)
        password_hash = await deps.hasher.hash(password)
        try:
            async with deps.db.transaction() as s:
                await _insert_user(s, identity, password_hash)
                for role in roles:
                    await s.execute(
                        insert(UserRole).values(
                            tenant_id=identity.tenant_id,
                            user_id=identity.id,
                            role_id=await role_id(s, identity.tenant_id, role),
                            created_at=identity.created_at,
                        )
                    )
        except IntegrityError:
            raise EmailTaken from None
        await deps.audit.record(
            events.USER_CREATED_BY_CLI, ctx, subject=identity.id, details={"admin": admin}
        )
        return identity


def _new_identity(
    tenant_id: uuid.UUID,
    email: str,
    name: str | None,
    *,
    verified: bool,
    roles: tuple[str, ...] = (),
    locale: str | None = None,
) -> Identity:
    now = utcnow()
    return Identity(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        email=email,
        name=name,
        status=UserStatus.active,
        email_verified_at=now if verified else None,
        roles=roles,
        created_at=now,
        last_login_at=None,
        locale=locale,
    )


async def _insert_user(s: AsyncSession, identity: Identity, password_hash: str) -> None:
    """Insert the user row of a new ``identity``; IntegrityError when the email is taken."""
    await s.execute(
        insert(User).values(
            id=identity.id,
            tenant_id=identity.tenant_id,
            email=identity.email,
            name=identity.name,
            password_hash=password_hash,
            status=identity.status.value,
            created_at=identity.created_at,
            updated_at=identity.created_at,
            password_changed_at=identity.created_at,
            email_verified_at=identity.email_verified_at,
            locale=identity.locale,
        )
    )
