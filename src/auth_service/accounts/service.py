"""Accounts: registration, credentials, profile, email verification, password reset, admin."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn, Protocol

import structlog
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Select, Update, delete, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.errors import (
    AccountDisabled,
    AccountLocked,
    EmailTaken,
    FeatureDisabled,
    InvalidCredentials,
    InvalidEmail,
    InvalidOneTimeToken,
    LastAdmin,
    UserNotFound,
    WeakPassword,
)
from auth_service.accounts.models import OneTimeToken, Role, User, UserRole
from auth_service.accounts.policy import check_password, too_long
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.config.settings import Settings
from auth_service.db.base import DEFAULT_TENANT_ID, utcnow
from auth_service.db.engine import Database
from auth_service.mail import templates
from auth_service.mail.service import MailService
from auth_service.observability import metrics
from auth_service.security.lockout import LockoutStore, lockout_key
from auth_service.security.passwords import HashingOverloaded, PasswordHasher
from auth_service.security.random import new_token, token_digest
from auth_service.security.ratelimit import RateLimited, RateLimiter

log = structlog.get_logger(__name__)

PURPOSE_VERIFY = "email_verify"
PURPOSE_RESET = "password_reset"
MAX_EMAIL_LENGTH = 320


class SessionRevoker(Protocol):
    async def revoke_user_sessions(
        self, user_id: uuid.UUID, *, reason: str, keep: uuid.UUID | None = None
    ) -> int: ...


@dataclass(frozen=True)
class Identity:
    """What other domains may know about a user."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    name: str | None
    status: str
    email_verified_at: datetime | None
    roles: tuple[str, ...]
    created_at: datetime
    last_login_at: datetime | None

    @property
    def active(self) -> bool:
        return self.status == "active"


def identity_select() -> Select[*tuple[Any, ...]]:
    """User columns and role names: one row per role (one row with ``role`` NULL if none).

    Callers add their own join and conditions (AccountService.identity, the session freshness
    check of SessionService.active_identity) and build the result with identity_from_rows.
    """
    return (
        select(
            User.id,
            User.tenant_id,
            User.email,
            User.name,
            User.status,
            User.email_verified_at,
            User.created_at,
            User.last_login_at,
            Role.name.label("role"),
        )
        .outerjoin(UserRole, UserRole.user_id == User.id)
        .outerjoin(Role, Role.id == UserRole.role_id)
    )


def identity_from_rows(rows: Sequence[Row[Any]]) -> Identity | None:
    """The Identity of identity_select rows (all of one user), None without rows."""
    if not rows:
        return None
    u = rows[0]
    return Identity(
        u.id,
        u.tenant_id,
        u.email,
        u.name,
        u.status,
        u.email_verified_at,
        tuple(sorted(r.role for r in rows if r.role is not None)),
        u.created_at,
        u.last_login_at,
    )


@dataclass(frozen=True)
class VerifiedLogin:
    """Credentials checked (AccountService.verify_login); the login is not recorded yet.

    ``record`` is the UPDATE of ``last_login_at`` (and of the hash when it was re-hashed with
    current parameters); the caller must execute it, alone or with its own writes.
    """

    identity: Identity
    record: Update


def normalize_email(raw: str) -> str:
    """Syntax-check and normalise: NFC, IDNA domain, then case-folded as a whole.

    Comparing case-insensitively (including the local part) is what users expect, and what
    every large identity provider does in practice.
    """
    candidate = raw.strip()
    if not candidate or len(candidate) > MAX_EMAIL_LENGTH:
        raise InvalidEmail("must be a valid email address of at most 320 characters")
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    return result.normalized.lower()


class AccountService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        hasher: PasswordHasher,
        limiter: RateLimiter,
        lockout: LockoutStore,
        audit: AuditService,
        mail: MailService,
    ) -> None:
        self._db = db
        self._settings = settings
        self._hasher = hasher
        self._limiter = limiter
        self._lockout = lockout
        self._audit = audit
        self._mail = mail
        self.session_revoker: SessionRevoker | None = None

    def apply_settings(self, settings: Settings) -> None:
        """Hot reload: password policy, lockout switch and token lifetimes."""
        self._settings = settings

    # ---- helpers -------------------------------------------------------------------------

    async def _roles(
        self, s: AsyncSession, user_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[str]]:
        if not user_ids:
            return {}
        rows = await s.execute(
            select(UserRole.user_id, Role.name)
            .join(Role, Role.id == UserRole.role_id)
            .where(UserRole.user_id.in_(user_ids))
        )
        out: dict[uuid.UUID, list[str]] = {uid: [] for uid in user_ids}
        for uid, name in rows:
            out[uid].append(name)
        return out

    @staticmethod
    def _new_user(email: str, password_hash: str, name: str | None, verified: bool) -> User:
        now = utcnow()
        return User(
            id=uuid.uuid4(),
            tenant_id=DEFAULT_TENANT_ID,
            email=email,
            name=name,
            password_hash=password_hash,
            status="active",
            created_at=now,
            updated_at=now,
            password_changed_at=now,
            email_verified_at=now if verified else None,
        )

    @staticmethod
    def _identity(user: User, roles: list[str]) -> Identity:
        return Identity(
            user.id,
            user.tenant_id,
            user.email,
            user.name,
            user.status,
            user.email_verified_at,
            tuple(sorted(roles)),
            user.created_at,
            user.last_login_at,
        )

    async def _rate(self, limiter: str, key: str, ctx: RequestContext) -> None:
        try:
            await self._limiter.hit(limiter, key)
        except RateLimited:
            await self._audit.record(
                events.RATE_LIMITED, ctx, outcome="denied", details={"limiter": limiter}
            )
            raise

    def _policy(self, password: str, email: str) -> None:
        reasons = check_password(password, self._settings.passwords, email)
        if reasons:
            raise WeakPassword(reasons)

    async def _issue_one_time(
        self, s: AsyncSession, user: User, purpose: str, ttl_seconds: int
    ) -> str:
        token = new_token()
        # A new link supersedes older unused ones of the same purpose.
        await s.execute(
            delete(OneTimeToken).where(
                OneTimeToken.user_id == user.id,
                OneTimeToken.purpose == purpose,
                OneTimeToken.used_at.is_(None),
            )
        )
        s.add(
            OneTimeToken(
                id=uuid.uuid4(),
                tenant_id=user.tenant_id,
                user_id=user.id,
                purpose=purpose,
                token_hash=token_digest(token),
                created_at=utcnow(),
                expires_at=utcnow() + timedelta(seconds=ttl_seconds),
            )
        )
        return token

    async def _consume_one_time(self, s: AsyncSession, token: str, purpose: str) -> uuid.UUID:
        if not token or len(token) > 512:
            raise InvalidOneTimeToken
        now = utcnow()
        user_id = await s.scalar(
            update(OneTimeToken)
            .where(
                OneTimeToken.token_hash == token_digest(token),
                OneTimeToken.purpose == purpose,
                OneTimeToken.used_at.is_(None),
                OneTimeToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(OneTimeToken.user_id)
        )
        if user_id is None:
            raise InvalidOneTimeToken
        return uuid.UUID(str(user_id))

    def _send_verification(self, email: str, token: str) -> None:
        ttl = self._settings.tokens.email_verification_ttl_seconds
        mail = templates.verification_email(self._settings.server.public_url, token, ttl // 3600)
        self._mail.send(email, mail.subject, mail.text)

    # ---- registration and credentials ----------------------------------------------------

    async def register(
        self, email: str, password: str, name: str | None, ctx: RequestContext
    ) -> Identity:
        """Create an account and send the verification email.

        Raises FeatureDisabled, InvalidEmail, WeakPassword, EmailTaken or RateLimited.
        """
        if not self._settings.features.registration:
            raise FeatureDisabled("registration")
        try:
            await self._rate("ip.register", ctx.ip or "unknown", ctx)
        except RateLimited:
            metrics.REGISTRATIONS.labels("rate_limited").inc()
            raise
        try:
            normalized = normalize_email(email)
            self._policy(password, normalized)
        except (InvalidEmail, WeakPassword):
            metrics.REGISTRATIONS.labels("invalid").inc()
            raise
        user = self._new_user(normalized, await self._hasher.hash(password), name, verified=False)
        try:
            async with self._db.transaction() as s:
                s.add(user)
                await s.flush()
                token = await self._issue_one_time(
                    s, user, PURPOSE_VERIFY, self._settings.tokens.email_verification_ttl_seconds
                )
        except IntegrityError:
            metrics.REGISTRATIONS.labels("conflict").inc()
            raise EmailTaken from None
        self._send_verification(normalized, token)
        metrics.REGISTRATIONS.labels("success").inc()
        await self._audit.record(events.USER_REGISTERED, ctx, subject=user.id)
        return self._identity(user, [])

    async def authenticate(self, email: str, password: str, ctx: RequestContext) -> Identity:
        """Check credentials (verify_login) and record the login; the user's Identity.

        Raises RateLimited, AccountLocked, InvalidCredentials, AccountDisabled or
        HashingOverloaded.
        """
        verified = await self.verify_login(email, password, ctx)
        async with self._db.single() as conn:  # one statement, atomic on its own
            await conn.execute(verified.record)
        return verified.identity

    async def verify_login(self, email: str, password: str, ctx: RequestContext) -> VerifiedLogin:
        """Check credentials with rate limits, lockout and constant work for unknown emails.

        Failures are fully handled here (lockout counter, audit row); success returns the
        statement recording the login, for the caller to run with its own writes
        (SessionService.login stores it with the new session in one round trip).
        Raises RateLimited, AccountLocked, InvalidCredentials, AccountDisabled or
        HashingOverloaded.
        """
        if not self._hasher.admits():
            # Shed before the limiters, lockout and user lookup: under overload a refusal
            # costs microseconds of the loop instead of four Redis and one database round
            # trip. The answer is the same for every email, so it reveals nothing.
            raise HashingOverloaded
        await self._rate("ip.login", ctx.ip or "unknown", ctx)
        try:
            normalized = normalize_email(email)
        except InvalidEmail:
            normalized = email.strip().lower()[:MAX_EMAIL_LENGTH]
        await self._rate("account.login", normalized, ctx)
        lock_id = lockout_key(str(DEFAULT_TENANT_ID), normalized)
        if self._settings.lockout.enabled:
            remaining = await self._lockout.locked_for(lock_id)
            if remaining > 0:
                metrics.LOGINS.labels("locked").inc()
                raise AccountLocked(max(1, int(remaining + 0.999)))
        if too_long(password, self._settings.passwords):
            # Refuse before hashing: nobody's password is longer than the policy allows.
            await self._fail_login(lock_id, None, ctx, "too_long")
        user, roles = await self._login_candidate(normalized)
        if user is None or user.password_hash is None:
            await self._hasher.verify_dummy(password)
            await self._fail_login(lock_id, None, ctx, "unknown_user")
        assert user is not None
        assert user.password_hash is not None
        result = await self._hasher.verify(user.password_hash, password)
        if not result.ok:
            await self._fail_login(lock_id, user.id, ctx, "bad_password")
        if user.status != "active":
            metrics.LOGINS.labels("disabled").inc()
            await self._audit.record(
                events.LOGIN_FAILED,
                ctx,
                outcome="denied",
                subject=user.id,
                details={"reason": "disabled"},
            )
            raise AccountDisabled
        await self._lockout.reset(lock_id)
        now = utcnow()
        # Every value explicit: ``record`` may run as a CTE, where column defaults and
        # onupdate (updated_at) are not applied.
        values: dict[str, object] = {"last_login_at": now, "updated_at": now}
        if result.needs_rehash:
            values["password_hash"] = await self._hasher.hash(password)
            log.info("password_rehashed", user_id=str(user.id))
        user.last_login_at = values["last_login_at"]  # type: ignore[assignment]
        return VerifiedLogin(
            self._identity(user, roles), update(User).where(User.id == user.id).values(**values)
        )

    async def _login_candidate(self, email: str) -> tuple[User | None, list[str]]:
        """The user with this email and their roles, in one statement (a row per role)."""
        columns = User.__table__.columns
        async with self._db.single() as conn:
            rows = (
                await conn.execute(
                    select(*columns, Role.name.label("role_name"))
                    .select_from(User)
                    .outerjoin(UserRole, UserRole.user_id == User.id)
                    .outerjoin(Role, Role.id == UserRole.role_id)
                    .where(User.tenant_id == DEFAULT_TENANT_ID, User.email == email)
                )
            ).all()
        if not rows:
            return None, []
        user = User(**{c.key: rows[0]._mapping[c] for c in columns})
        return user, [r.role_name for r in rows if r.role_name is not None]

    async def _fail_login(
        self, lock_id: str, user_id: uuid.UUID | None, ctx: RequestContext, reason: str
    ) -> NoReturn:
        metrics.LOGINS.labels("bad_credentials").inc()
        locked = 0.0
        if self._settings.lockout.enabled:
            locked = await self._lockout.record_failure(lock_id)
        await self._audit.record(
            events.LOGIN_FAILED, ctx, outcome="failure", subject=user_id, details={"reason": reason}
        )
        if locked:
            metrics.LOCKOUTS.inc()
            await self._audit.record(
                events.ACCOUNT_LOCKED,
                ctx,
                outcome="denied",
                subject=user_id,
                details={"seconds": int(locked)},
            )
        raise InvalidCredentials

    async def change_password(
        self,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        current: str,
        new: str,
        ctx: RequestContext,
    ) -> None:
        """Change a password knowing the current one; other sessions are revoked."""
        user = await self._get_user(user_id)
        # A stolen access token must not become an unlimited oracle for the password:
        # the same per-account limiter and lockout as login apply.
        await self._rate("account.login", user.email, ctx)
        lock_id = lockout_key(str(user.tenant_id), user.email)
        if self._settings.lockout.enabled:
            remaining = await self._lockout.locked_for(lock_id)
            if remaining > 0:
                raise AccountLocked(max(1, int(remaining + 0.999)))
        if user.password_hash is None or too_long(current, self._settings.passwords):
            raise InvalidCredentials
        if not (await self._hasher.verify(user.password_hash, current)).ok:
            if self._settings.lockout.enabled:
                await self._lockout.record_failure(lock_id)
            await self._audit.record(
                events.PASSWORD_CHANGED,
                ctx,
                outcome="failure",
                subject=user_id,
                details={"reason": "bad_current_password"},
            )
            raise InvalidCredentials
        self._policy(new, user.email)
        await self._set_password(user_id, new)
        if self.session_revoker is not None:
            await self.session_revoker.revoke_user_sessions(
                user_id, reason="password_changed", keep=session_id
            )
        await self._audit.record(events.PASSWORD_CHANGED, ctx, subject=user_id)

    async def _set_password(self, user_id: uuid.UUID, password: str) -> None:
        password_hash = await self._hasher.hash(password)
        async with self._db.transaction() as s:
            await s.execute(
                update(User)
                .where(User.id == user_id)
                .values(
                    password_hash=password_hash, password_changed_at=utcnow(), updated_at=utcnow()
                )
            )

    async def forgot_password(self, email: str, ctx: RequestContext) -> None:
        """Send a reset link if the account exists; behave identically if it does not."""
        if not self._settings.features.password_reset:
            raise FeatureDisabled("password_reset")
        await self._rate("ip.forgot", ctx.ip or "unknown", ctx)
        try:
            normalized = normalize_email(email)
        except InvalidEmail:
            return
        await self._rate("account.forgot", normalized, ctx)
        metrics.PASSWORD_RESETS.labels("requested").inc()
        async with self._db.transaction() as s:
            user = await s.scalar(
                select(User).where(User.tenant_id == DEFAULT_TENANT_ID, User.email == normalized)
            )
            token = None
            if user is not None and user.status == "active":
                token = await self._issue_one_time(
                    s, user, PURPOSE_RESET, self._settings.tokens.password_reset_ttl_seconds
                )
        if user is not None and token is not None:
            ttl = self._settings.tokens.password_reset_ttl_seconds
            mail = templates.password_reset_email(
                self._settings.server.public_url, token, ttl // 60
            )
            self._mail.send(user.email, mail.subject, mail.text)
        await self._audit.record(
            events.PASSWORD_RESET_REQUESTED,
            ctx,
            subject=user.id if user else None,
            outcome="success" if token else "ignored",
        )

    async def reset_password(self, token: str, new_password: str, ctx: RequestContext) -> None:
        """Set a new password with a single-use reset token; every session is revoked."""
        if not self._settings.features.password_reset:
            raise FeatureDisabled("password_reset")
        await self._rate("ip.reset", ctx.ip or "unknown", ctx)
        if too_long(new_password, self._settings.passwords):
            raise WeakPassword(
                [f"must be at most {self._settings.passwords.max_length} characters"]
            )
        # Check the policy before spending the token, so a weak choice can be corrected.
        async with self._db.sessionmaker() as s:
            row = await s.execute(
                select(User.email, User.status)
                .join(OneTimeToken, OneTimeToken.user_id == User.id)
                .where(
                    OneTimeToken.token_hash == token_digest(token),
                    OneTimeToken.purpose == PURPOSE_RESET,
                    OneTimeToken.used_at.is_(None),
                    OneTimeToken.expires_at > utcnow(),
                )
            )
            found = row.first()
        if found is None:
            metrics.PASSWORD_RESETS.labels("invalid").inc()
            raise InvalidOneTimeToken
        self._policy(new_password, found.email)
        async with self._db.transaction() as s:
            try:
                user_id = await self._consume_one_time(s, token, PURPOSE_RESET)
            except InvalidOneTimeToken:
                metrics.PASSWORD_RESETS.labels("invalid").inc()
                raise
        await self._set_password(user_id, new_password)
        await self._lockout.reset(lockout_key(str(DEFAULT_TENANT_ID), found.email))
        if self.session_revoker is not None:
            await self.session_revoker.revoke_user_sessions(user_id, reason="password_reset")
        metrics.PASSWORD_RESETS.labels("completed").inc()
        await self._audit.record(events.PASSWORD_RESET, ctx, subject=user_id)

    async def verify_email(self, token: str, ctx: RequestContext) -> None:
        await self._rate("ip.verify", ctx.ip or "unknown", ctx)
        async with self._db.transaction() as s:
            try:
                user_id = await self._consume_one_time(s, token, PURPOSE_VERIFY)
            except InvalidOneTimeToken:
                metrics.EMAIL_VERIFICATIONS.labels("invalid").inc()
                raise
            await s.execute(
                update(User)
                .where(User.id == user_id, User.email_verified_at.is_(None))
                .values(email_verified_at=utcnow(), updated_at=utcnow())
            )
        metrics.EMAIL_VERIFICATIONS.labels("success").inc()
        await self._audit.record(events.EMAIL_VERIFIED, ctx, subject=user_id)

    async def resend_verification(self, user_id: uuid.UUID, ctx: RequestContext) -> None:
        await self._rate("ip.verify", ctx.ip or "unknown", ctx)
        async with self._db.transaction() as s:
            user = await s.get(User, user_id)
            if user is None:
                raise UserNotFound
            if user.email_verified_at is not None:
                return
            token = await self._issue_one_time(
                s, user, PURPOSE_VERIFY, self._settings.tokens.email_verification_ttl_seconds
            )
        self._send_verification(user.email, token)

    # ---- profile and admin ---------------------------------------------------------------

    async def _get_user(self, user_id: uuid.UUID) -> User:
        async with self._db.sessionmaker() as s:
            user = await s.get(User, user_id)
        if user is None:
            raise UserNotFound
        return user

    async def identity(self, user_id: uuid.UUID) -> Identity | None:
        """The user and their roles, read fresh (one statement: a row per role)."""
        async with self._db.single() as conn:
            rows = (await conn.execute(identity_select().where(User.id == user_id))).all()
        return identity_from_rows(rows)

    async def get(self, user_id: uuid.UUID) -> Identity:
        found = await self.identity(user_id)
        if found is None:
            raise UserNotFound
        return found

    async def update_profile(self, user_id: uuid.UUID, name: str | None) -> Identity:
        async with self._db.transaction() as s:
            result = await s.execute(
                update(User).where(User.id == user_id).values(name=name, updated_at=utcnow())
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise UserNotFound
        return await self.get(user_id)

    async def list_users(
        self, *, email: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Identity], int]:
        stmt = select(User).where(User.tenant_id == DEFAULT_TENANT_ID)
        if email:
            pattern = (
                email.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            )
            stmt = stmt.where(User.email.like(f"%{pattern}%", escape="\\"))
        async with self._db.sessionmaker() as s:
            total = await s.scalar(select(func.count()).select_from(stmt.subquery()))
            users = (
                await s.scalars(stmt.order_by(User.created_at, User.id).limit(limit).offset(offset))
            ).all()
            roles = await self._roles(s, [u.id for u in users])
        return [self._identity(u, roles[u.id]) for u in users], int(total or 0)

    async def _role_id(self, s: AsyncSession, name: str) -> uuid.UUID:
        role_id = await s.scalar(
            select(Role.id).where(Role.tenant_id == DEFAULT_TENANT_ID, Role.name == name)
        )
        if role_id is None:
            raise ValueError(f"unknown role {name!r}")
        return role_id

    async def _active_admins(self, s: AsyncSession) -> int:
        count = await s.scalar(
            select(func.count())
            .select_from(UserRole)
            .join(Role, Role.id == UserRole.role_id)
            .join(User, User.id == UserRole.user_id)
            .where(
                Role.name == "admin", User.status == "active", User.tenant_id == DEFAULT_TENANT_ID
            )
        )
        return int(count or 0)

    async def admin_update(
        self,
        user_id: uuid.UUID,
        ctx: RequestContext,
        *,
        status: str | None = None,
        roles: list[str] | None = None,
        name: str | None = None,
        set_name: bool = False,
    ) -> Identity:
        """Disable/enable, set roles or name. Never leaves the tenant without an admin."""
        changes: dict[str, object] = {}
        async with self._db.transaction() as s:
            user = await s.get(User, user_id, with_for_update=True)
            if user is None:
                raise UserNotFound
            if status is not None and status != user.status:
                user.status = status
                changes["status"] = status
            if set_name:
                user.name = name
                changes["name"] = "updated"
            if roles is not None:
                wanted = {await self._role_id(s, r) for r in set(roles)}
                await s.execute(delete(UserRole).where(UserRole.user_id == user_id))
                for role_id in wanted:
                    s.add(UserRole(tenant_id=user.tenant_id, user_id=user_id, role_id=role_id))
                changes["roles"] = sorted(set(roles))
            user.updated_at = utcnow()
            await s.flush()
            if await self._active_admins(s) == 0:
                raise LastAdmin
        if changes.get("status") == "disabled" and self.session_revoker is not None:
            await self.session_revoker.revoke_user_sessions(user_id, reason="disabled")
        await self._audit.record(events.ADMIN_USER_UPDATED, ctx, subject=user_id, details=changes)
        return await self.get(user_id)

    async def admin_delete(self, user_id: uuid.UUID, ctx: RequestContext) -> None:
        async with self._db.transaction() as s:
            result = await s.execute(delete(User).where(User.id == user_id))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise UserNotFound
            await s.flush()
            if await self._active_admins(s) == 0:
                raise LastAdmin
        await self._audit.record(events.ADMIN_USER_DELETED, ctx, subject=user_id)

    async def create_user(
        self, email: str, password: str, *, admin: bool, ctx: RequestContext, verified: bool = True
    ) -> Identity:
        """Operator path (CLI): no rate limits, no mail; the password policy still applies."""
        normalized = normalize_email(email)
        self._policy(password, normalized)
        user = self._new_user(normalized, await self._hasher.hash(password), None, verified)
        try:
            async with self._db.transaction() as s:
                s.add(user)
                await s.flush()
                if admin:
                    s.add(
                        UserRole(
                            tenant_id=user.tenant_id,
                            user_id=user.id,
                            role_id=await self._role_id(s, "admin"),
                        )
                    )
        except IntegrityError:
            raise EmailTaken from None
        await self._audit.record(
            events.USER_CREATED_BY_CLI, ctx, subject=user.id, details={"admin": admin}
        )
        return self._identity(user, ["admin"] if admin else [])

    async def count_users(self) -> int:
        async with self._db.sessionmaker() as s:
            return int(await s.scalar(select(func.count()).select_from(User)) or 0)
