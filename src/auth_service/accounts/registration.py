"""Creating accounts: self-service registration and the operator's ``users create``.

Self-service registration answers the same whether or not the address has an account
(ADR 0011); only the operator's path says that an email is taken.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from sqlalchemy import Insert, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from auth_service.accounts.deps import AccountDeps
from auth_service.accounts.emails import new_account_email
from auth_service.accounts.errors import EmailTaken, FeatureDisabled, InvalidEmail, WeakPassword
from auth_service.accounts.identity import BuiltinRole, Identity, IdentityReader, UserStatus
from auth_service.accounts.models import User, UserRole
from auth_service.accounts.recovery import PasswordRecovery
from auth_service.accounts.roles import role_id
from auth_service.accounts.verification import EmailVerification
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.db.base import utcnow
from auth_service.db.engine import Backend
from auth_service.mail import templates
from auth_service.observability import metrics
from auth_service.security.ratelimit import Limiter, RateLimited


class Registration:
    def __init__(
        self,
        deps: AccountDeps,
        identities: IdentityReader,
        verification: EmailVerification,
        recovery: PasswordRecovery,
    ) -> None:
        self._deps = deps
        self._identities = identities
        self._verification = verification
        self._recovery = recovery

    async def register(
        self,
        email: str,
        password: str,
        name: str | None,
        ctx: RequestContext,
        *,
        locale: str | None = None,
    ) -> None:
        """Create an account and mail a verification link; or, when the address already has
        an account, mail its owner instead. The caller cannot tell which (ADR 0011).
        ``locale``: the language the person registered in, kept for the account's emails.

        The owner of an existing active account gets a notice that someone tried to register
        with the address, with a password-reset link (a disabled account gets nothing). Both
        paths hash the password, look the address up, and run the same writes (the insert of
        the user, which does nothing when the address is taken; a token row, a decoy for a
        disabled account; the audit event), so they take the same time.

        The per-IP limit counts only attempts that reach hashing: an address or password the
        policy refuses costs nothing and counts nothing. The per-address limit of recovery
        mails (``account.forgot``) counts every attempt that does, whether or not the address
        has an account, so a flood of registrations cannot flood an owner's mailbox.
        Raises FeatureDisabled, InvalidEmail, WeakPassword, RateLimited or
        HashingOverloaded.
        """
        deps = self._deps
        if not deps.settings.features.registration:
            raise FeatureDisabled("registration")
        try:
            normalized = new_account_email(email)
            deps.enforce_password_policy(password, normalized)
        except (InvalidEmail, WeakPassword):
            metrics.REGISTRATIONS.labels("invalid").inc()
            raise
        try:
            await deps.guard.count(Limiter.ip_register, ctx.ip or "unknown", ctx)
            await deps.guard.count(Limiter.account_forgot, normalized, ctx)
        except RateLimited:
            metrics.REGISTRATIONS.labels("rate_limited").inc()
            raise
        # Hashed on both paths: an address with an account must not be answered faster.
        password_hash = await deps.hasher.hash(password)
        existing = await self._identities.by_email(deps.tenant_id, normalized)
        identity = _new_identity(deps.tenant_id, normalized, name, verified=False, locale=locale)
        if existing is None:
            notice = self._verification.link(identity)
            audit = deps.audit.prepare(events.USER_REGISTERED, ctx, subject=identity.id)
        else:
            owner = existing if existing.active else None
            notice = self._recovery.reset_link(owner, templates.account_exists_email)
            audit = deps.audit.prepare(
                events.REGISTRATION_FOR_EXISTING_ACCOUNT,
                ctx,
                outcome="ignored",
                subject=existing.id,
                details={"notified": owner is not None},
            )
        try:
            await deps.db.write_together(
                _insert_user_unless_taken(deps.db.backend, identity, password_hash),
                *notice.writes,
                notice.mail_job(deps.mail, deps.tenant_id),
                *deps.audit.stores(audit),
            )
        except IntegrityError:
            # A concurrent registration of this address won between the lookup and the
            # insert (the token row then has no user to belong to). Its owner gets the mail;
            # this one is answered like any taken address, and nothing of it was stored.
            metrics.REGISTRATIONS.labels("conflict").inc()
            return
        deps.audit.emit(audit)
        deps.mail.wake()
        metrics.REGISTRATIONS.labels("success" if existing is None else "conflict").inc()

    async def create_user(
        self,
        email: str,
        password: str | None,
        *,
        admin: bool,
        ctx: RequestContext,
        verified: bool = True,
        name: str | None = None,
    ) -> Identity:
        """Operator path (CLI, admin API): no rate limits, no mail; the password policy still
        applies. Without a password the account has none until its user follows a reset
        link (``PasswordRecovery.send_reset_link``), so password reset must be switched on.

        Raises InvalidEmail, WeakPassword, EmailTaken or FeatureDisabled.
        """
        deps = self._deps
        normalized = new_account_email(email)
        if password is None and not deps.settings.features.password_reset:
            raise FeatureDisabled("password_reset")
        if password is not None:
            deps.enforce_password_policy(password, normalized)
        roles = (BuiltinRole.admin.value,) if admin else ()
        identity = _new_identity(deps.tenant_id, normalized, name, verified=verified, roles=roles)
        password_hash = await deps.hasher.hash(password) if password is not None else None
        try:
            async with deps.db.transaction() as s:
                await s.execute(_insert_user(identity, password_hash))
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
        # Not "password": audit details drop keys that name secrets (audit.service).
        credential = "password" if password is not None else "none"
        details = {"admin": admin, "verified": verified, "credential": credential}
        await deps.audit.record(
            events.ADMIN_USER_CREATED, ctx, subject=identity.id, details=details
        )
        return identity

    async def create_federated(
        self,
        email: str,
        name: str | None,
        *,
        verified: bool,
        ctx: RequestContext,
        with_rows: Callable[[Identity], Sequence[Insert]],
        details: dict[str, object],
        locale: str | None = None,
    ) -> Identity:
        """An account created at its first sign-in through an upstream identity provider
        (federation): no password, the upstream's email and name, and ``with_rows`` (the
        link to the upstream identity) written in the same transaction.
        Raises InvalidEmail or EmailTaken."""
        deps = self._deps
        normalized = new_account_email(email)
        identity = _new_identity(deps.tenant_id, normalized, name, verified=verified, locale=locale)
        try:
            async with deps.db.transaction() as s:
                await s.execute(_insert_user(identity, None))
                for row in with_rows(identity):
                    await s.execute(row)
        except IntegrityError:
            raise EmailTaken from None
        await deps.audit.record(
            events.USER_REGISTERED,
            ctx,
            subject=identity.id,
            details={**details, "verified": verified},
        )
        metrics.REGISTRATIONS.labels("success").inc()
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


def _user_row(identity: Identity, password_hash: str | None) -> dict[str, object]:
    # Every value explicit: the insert may run as a CTE, where defaults are not applied.
    return {
        "id": identity.id,
        "tenant_id": identity.tenant_id,
        "email": identity.email,
        "name": identity.name,
        "password_hash": password_hash,
        "status": identity.status.value,
        "created_at": identity.created_at,
        "updated_at": identity.created_at,
        "password_changed_at": identity.created_at,
        "email_verified_at": identity.email_verified_at,
        "last_login_at": None,
        "locale": identity.locale,
    }


def _insert_user(identity: Identity, password_hash: str | None) -> Insert:
    """The insert of a new user; IntegrityError when the email is taken."""
    return insert(User).values(**_user_row(identity, password_hash))


def _insert_user_unless_taken(backend: Backend, identity: Identity, password_hash: str) -> Insert:
    """The insert of a new user that does nothing when the tenant has the email already
    (``ON CONFLICT DO NOTHING``, on PostgreSQL and SQLite alike)."""
    dialect_insert = pg_insert if backend is Backend.postgresql else sqlite_insert
    return (
        dialect_insert(User)
        .values(**_user_row(identity, password_hash))
        .on_conflict_do_nothing(index_elements=[User.tenant_id, User.email])
    )
