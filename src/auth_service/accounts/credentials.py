"""Password credentials: the sign-in check, changing a password, setting a new one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import NoReturn

import structlog
from sqlalchemy import Update, func, select, update

from auth_service.accounts.assurance import PASSWORD_ONLY, Assurance, AuthMethod
from auth_service.accounts.deps import AccountDeps
from auth_service.accounts.emails import lookup_form
from auth_service.accounts.errors import (
    AccountDisabled,
    AccountLocked,
    InvalidCredentials,
    UserNotFound,
)
from auth_service.accounts.identity import Identity, IdentityReader
from auth_service.accounts.models import User
from auth_service.accounts.policy import too_long
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.db.base import utcnow
from auth_service.observability import metrics
from auth_service.security.lockout import LockKeys
from auth_service.security.passwords import HashingOverloaded
from auth_service.security.ratelimit import Limiter

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class VerifiedLogin:
    """Credentials checked (Credentials.verify_login); the login is not recorded yet.

    ``record`` is the UPDATE of ``last_login_at`` (and of the hash when it was re-hashed with
    current parameters); the caller must execute it, alone or with its own writes.
    """

    identity: Identity
    record: Update
    amr: tuple[AuthMethod, ...] = PASSWORD_ONLY
    acr: Assurance = Assurance.aal1


class Credentials:
    def __init__(self, deps: AccountDeps, identities: IdentityReader) -> None:
        self._deps = deps
        self._identities = identities

    async def verify_login(self, email: str, password: str, ctx: RequestContext) -> VerifiedLogin:
        """Check credentials with rate limits, lockout and constant work for unknown emails.

        Failures are fully handled here (lockout counter, audit row); success returns the
        statement recording the login, for the caller to run with its own writes
        (SessionService.login stores it with the new session in one round trip).
        Raises RateLimited, AccountLocked, InvalidCredentials, AccountDisabled or
        HashingOverloaded.
        """
        deps = self._deps
        if not deps.hasher.admits():
            # Shed before the limiters, lockout and user lookup: under overload a refusal
            # costs microseconds of the loop instead of four Redis and one database round
            # trip. The answer is the same for every email, so it reveals nothing.
            raise HashingOverloaded
        guard = deps.guard
        await guard.count(Limiter.ip_login, ctx.ip or "unknown", ctx)
        normalized = lookup_form(email)
        keys = guard.lock_keys(deps.tenant_id, normalized, ctx)
        # Per account *and* client network, like the lockout: an attacker's flood fills
        # their own window, never the owner's (ADR 0013).
        await guard.count(Limiter.account_login, keys.network, ctx)
        try:
            await guard.ensure_unlocked(keys)
        except AccountLocked:
            metrics.LOGINS.labels("locked").inc()
            raise
        if too_long(password, deps.settings.passwords):
            # Refuse before hashing: nobody's password is longer than the policy allows.
            await self._fail_login(keys, None, ctx, "too_long")
        candidate = await self._identities.login_candidate(deps.tenant_id, normalized)
        if candidate is None or candidate.password_hash is None:
            await deps.hasher.verify_dummy(password)
            await self._fail_login(keys, None, ctx, "unknown_user")
        identity = candidate.identity
        result = await deps.hasher.verify(candidate.password_hash, password)
        if not result.ok:
            await self._fail_login(keys, identity.id, ctx, "bad_password")
        if not identity.active:
            metrics.LOGINS.labels("disabled").inc()
            await deps.audit.record(
                events.LOGIN_FAILED,
                ctx,
                outcome="denied",
                subject=identity.id,
                details={"reason": "disabled"},
            )
            raise AccountDisabled
        await guard.succeeded(keys)
        now = utcnow()
        # Every value explicit: ``record`` may run as a CTE, where column defaults and
        # onupdate (updated_at) are not applied.
        values: dict[str, object] = {"last_login_at": now, "updated_at": now}
        await self._cancel_deletion(identity, values, ctx)
        if result.needs_rehash:
            values["password_hash"] = await deps.hasher.hash(password)
            log.info("password_rehashed", user_id=str(identity.id))
        return VerifiedLogin(
            replace(identity, last_login_at=now, deletion_due_at=None),
            update(User).where(User.id == identity.id).values(**values),
        )

    async def authenticate(self, email: str, password: str, ctx: RequestContext) -> Identity:
        """Check credentials (verify_login) and record the login; the user's Identity.

        Raises RateLimited, AccountLocked, InvalidCredentials, AccountDisabled or
        HashingOverloaded.
        """
        verified = await self.verify_login(email, password, ctx)
        async with self._deps.db.single() as conn:  # one statement, atomic on its own
            await conn.execute(verified.record)
        await self._deps.user_changed(verified.identity.id)  # last_login_at
        return verified.identity

    async def _fail_login(
        self, keys: LockKeys, user_id: uuid.UUID | None, ctx: RequestContext, reason: str
    ) -> NoReturn:
        metrics.LOGINS.labels("bad_credentials").inc()
        await self._deps.audit.record(
            events.LOGIN_FAILED, ctx, outcome="failure", subject=user_id, details={"reason": reason}
        )
        await self._deps.guard.record_failure(keys, user_id, ctx)
        raise InvalidCredentials

    async def confirm_password(
        self, user_id: uuid.UUID, password: str, ctx: RequestContext, *, purpose: str
    ) -> str:
        """Check the signed-in user's password before a sensitive change; their email.

        A stolen session must not become an unlimited oracle for the password: the same
        per-account limiter and lockout as sign-in apply, and a failure is audited under
        ``purpose`` (the event type of the change asked for). Raises UserNotFound,
        RateLimited, AccountLocked or InvalidCredentials.
        """
        deps = self._deps
        async with deps.db.single() as conn:
            user = (
                await conn.execute(
                    select(User.email, User.tenant_id, User.password_hash).where(User.id == user_id)
                )
            ).first()
        if user is None:
            raise UserNotFound
        guard = deps.guard
        keys = guard.lock_keys(user.tenant_id, user.email, ctx)
        await guard.count(Limiter.account_login, keys.network, ctx)
        await guard.ensure_unlocked(keys)
        if user.password_hash is None or too_long(password, deps.settings.passwords):
            raise InvalidCredentials
        if not (await deps.hasher.verify(user.password_hash, password)).ok:
            await deps.audit.record(
                purpose,
                ctx,
                outcome="failure",
                subject=user_id,
                details={"reason": "bad_current_password"},
            )
            await guard.record_failure(keys, user_id, ctx)
            raise InvalidCredentials
        return str(user.email)

    async def change_password(
        self,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        current: str,
        new: str,
        ctx: RequestContext,
    ) -> None:
        """Change a password knowing the current one; the user's other sessions are revoked.

        Raises UserNotFound, RateLimited, AccountLocked, InvalidCredentials or WeakPassword.
        """
        deps = self._deps
        email = await self.confirm_password(user_id, current, ctx, purpose=events.PASSWORD_CHANGED)
        deps.enforce_password_policy(new, email)
        await self.set_password(user_id, new)
        await deps.revoker.revoke_user_sessions(user_id, reason="password_changed", keep=session_id)
        await deps.audit.record(events.PASSWORD_CHANGED, ctx, subject=user_id)

    async def set_password(
        self, user_id: uuid.UUID, password: str, *, mailbox_proven: bool = False
    ) -> None:
        """Store a new hash of ``password`` (the policy was checked by the caller).

        ``mailbox_proven``: the caller spent a token mailed to the address (a reset link),
        which verifies the address as a verification link would.
        """
        password_hash = await self._deps.hasher.hash(password)
        now = utcnow()
        values: dict[str, object] = {
            "password_hash": password_hash,
            "password_changed_at": now,
            "updated_at": now,
        }
        if mailbox_proven:
            values["email_verified_at"] = func.coalesce(User.email_verified_at, now)
        async with self._deps.db.single() as conn:
            await conn.execute(update(User).where(User.id == user_id).values(**values))
        await self._deps.user_changed(user_id)

    async def has_password(self, user_id: uuid.UUID) -> bool:
        """Whether the user can sign in with a password (federated accounts may not)."""
        async with self._deps.db.single() as conn:
            found = await conn.scalar(select(User.password_hash).where(User.id == user_id))
        return found is not None

    async def resume(
        self,
        user_id: uuid.UUID,
        *,
        amr: tuple[AuthMethod, ...],
        acr: Assurance,
        identity: Identity | None = None,
    ) -> VerifiedLogin:
        """A sign-in finished by another check (a second factor, a passkey): the user (read
        fresh unless the caller read it in this request), and the statement recording the
        login. Raises InvalidCredentials (the user is gone) or AccountDisabled."""
        if identity is None or identity.id != user_id:
            identity = await self._identities.identity(user_id)
        if identity is None:
            raise InvalidCredentials
        if not identity.active:
            raise AccountDisabled
        now = utcnow()
        values: dict[str, object] = {"last_login_at": now, "updated_at": now}
        await self._cancel_deletion(identity, values, RequestContext(actor_user_id=user_id))
        return VerifiedLogin(
            replace(identity, last_login_at=now, deletion_due_at=None),
            update(User).where(User.id == user_id).values(**values),
            amr,
            acr,
        )

    async def _cancel_deletion(
        self, identity: Identity, values: dict[str, object], ctx: RequestContext
    ) -> None:
        """Signing in cancels a pending account deletion (docs/privacy.md): the statement
        recording the login clears it too."""
        if identity.deletion_due_at is None:
            return
        values["deletion_due_at"] = None
        await self._deps.audit.record(
            events.ACCOUNT_DELETION_CANCELLED, ctx, subject=identity.id, details={"by": "sign_in"}
        )
