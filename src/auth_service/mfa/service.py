"""The MFA domain as the rest of the service holds it: one object, a use case per attribute.

``factors`` (TOTP, recovery codes) and ``passkeys`` manage a user's factors; the methods here
check a second factor during a sign-in, with the same attempt limits and lockout as the
password (``AttemptGuard``), read a user's factors in one statement, and reset them (admin).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select

from auth_service.accounts.assurance import AuthMethod
from auth_service.accounts.guard import AttemptGuard
from auth_service.accounts.identity import Identity, IdentityReader
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.config.settings import Settings
from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.mail.service import MailService
from auth_service.mfa import mails, totp
from auth_service.mfa.deps import MfaDeps
from auth_service.mfa.errors import InvalidFactor
from auth_service.mfa.factors import Factors
from auth_service.mfa.models import MfaEnrolmentGrace, PasskeyCredential, RecoveryCode, TotpSecret
from auth_service.mfa.passkeys import Passkeys, PasskeyUse
from auth_service.mfa.policy import Factor, FactorSummary, passkey_method
from auth_service.security.aead import MasterKey
from auth_service.security.ratelimit import Limiter


class MfaService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        master_key: MasterKey,
        audit: AuditService,
        mail: MailService,
        guard: AttemptGuard,
        identities: IdentityReader,
    ) -> None:
        self._deps = MfaDeps(db, settings, master_key, audit, mail, guard, identities)
        self.factors = Factors(self._deps)
        self.passkeys = Passkeys(self._deps, self.factors)

    @property
    def settings(self) -> Settings:
        return self._deps.settings

    def apply_settings(self, settings: Settings) -> None:
        """Hot reload: policy, windows and relying party apply from the next call."""
        self._deps.settings = settings

    async def summary(self, user_id: uuid.UUID) -> FactorSummary:
        """The user's factors, in one statement (it runs on every password sign-in)."""
        totp_sealed = (  # one row at most: the user id is the table's key
            select(TotpSecret.secret_sealed)
            .where(TotpSecret.user_id == user_id, TotpSecret.confirmed_at.is_not(None))
            .scalar_subquery()
        )
        passkeys = (
            select(func.count())
            .select_from(PasskeyCredential)
            .where(PasskeyCredential.user_id == user_id)
            .scalar_subquery()
        )
        codes = (
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
            .scalar_subquery()
        )
        grace = (
            select(MfaEnrolmentGrace.started_at)
            .where(MfaEnrolmentGrace.user_id == user_id)
            .scalar_subquery()
        )
        async with self._deps.db.single() as conn:
            row = (
                await conn.execute(
                    select(
                        totp_sealed.label("totp_sealed"),
                        passkeys.label("passkeys"),
                        codes.label("codes"),
                        grace.label("grace"),
                    )
                )
            ).one()
        grace_started = row.grace
        if isinstance(grace_started, str):  # SQLite returns a bare scalar subquery as text
            grace_started = datetime.fromisoformat(grace_started)
        if grace_started is not None and grace_started.tzinfo is None:
            grace_started = grace_started.replace(tzinfo=UTC)
        sealed = row.totp_sealed
        return FactorSummary(
            sealed is not None,
            int(row.passkeys),
            int(row.codes),
            grace_started,
            totp_sealed=bytes(sealed) if sealed is not None else None,
        )

    async def start_grace(self, identity: Identity) -> None:
        """Remember the first sign-in without a required factor (idempotent)."""
        async with self._deps.db.transaction() as s:
            found = await s.scalar(
                select(MfaEnrolmentGrace.user_id).where(MfaEnrolmentGrace.user_id == identity.id)
            )
            if found is None:
                await s.execute(
                    insert(MfaEnrolmentGrace).values(
                        user_id=identity.id, tenant_id=identity.tenant_id, started_at=utcnow()
                    )
                )

    # ---- the second step of a sign-in ----------------------------------------------------

    async def verify_code(
        self,
        identity: Identity,
        factor: Factor,
        code: str,
        ctx: RequestContext,
        *,
        with_password: bool = False,
        totp_sealed: bytes | None = None,
    ) -> tuple[AuthMethod, ...]:
        """Check a TOTP or recovery code of a pending sign-in; the ``amr`` it adds.

        Rate limits and lockout as for a password. ``with_password``: the code came in the
        same request as the password, whose check has just counted this attempt toward the
        limits and found the account's counters unlocked; only the second step's own
        counters are checked then (one attempt is counted once). A wrong code counts toward
        both either way. Raises RateLimited, AccountLocked or InvalidFactor (wrong, reused or
        expired: one answer). ``totp_sealed``: the confirmed secret as ``summary`` read it in
        this request (saves reading it again)."""
        if with_password:
            await self._deps.guard.ensure_unlocked(self._deps.lock_keys(identity, ctx)[1])
        else:
            await self._before_attempt(identity, ctx)
        ok = False
        if factor is Factor.totp:
            ok = await self._totp_ok(identity.id, code, totp_sealed)
        elif factor is Factor.recovery_code:
            ok = await self.factors.use_recovery_code(identity.id, code)
            if ok:
                left = await self.factors.recovery_codes_left(identity.id)
                await self._deps.audit.record(
                    events.MFA_RECOVERY_CODE_USED, ctx, subject=identity.id, details={"left": left}
                )
        await self._after_attempt(identity, ok, factor.value, ctx)
        return (AuthMethod.otp,)

    async def verify_passkey(
        self, identity: Identity, credential: Any, challenge: bytes, ctx: RequestContext
    ) -> tuple[AuthMethod, ...]:
        """A passkey as the second factor of ``identity``; the ``amr`` it adds."""
        await self._before_attempt(identity, ctx)
        try:
            use = await self.passkeys.verify(
                credential, challenge, ctx, user_id=identity.id, require_uv=False
            )
        except InvalidFactor:
            await self._after_attempt(identity, False, Factor.webauthn.value, ctx)
            raise
        await self._after_attempt(identity, True, Factor.webauthn.value, ctx)
        return (passkey_method(use.device_type),)

    async def verify_passwordless(
        self, credential: Any, challenge: bytes, ctx: RequestContext
    ) -> tuple[PasskeyUse, tuple[AuthMethod, ...]]:
        """A usernameless passkey sign-in (user verification required): whose, and the ``amr``
        of a multi-factor cryptographic authenticator (SP 800-63B 5.1.9). Raises RateLimited
        or InvalidFactor."""
        await self._deps.guard.count(Limiter.ip_login, ctx.ip or "unknown", ctx)
        try:
            use = await self.passkeys.verify(
                credential, challenge, ctx, user_id=None, require_uv=True
            )
        except InvalidFactor:
            await self._deps.audit.record(
                events.MFA_FAILED, ctx, outcome="failure", details={"factor": "passkey"}
            )
            raise
        return use, (passkey_method(use.device_type), AuthMethod.mfa)

    async def throttle(self, ctx: RequestContext) -> None:
        """Count an unauthenticated request that costs a write (a passkey sign-in's options)
        toward ``ip.login``; checks that passkeys are on. Raises RateLimited, FactorDisabled."""
        self.passkeys.require_enabled()
        await self._deps.guard.count(Limiter.ip_login, ctx.ip or "unknown", ctx)

    async def _totp_ok(self, user_id: uuid.UUID, code: str, sealed: bytes | None) -> bool:
        if sealed is not None:
            secret: str | None = self.factors.open_secret(user_id, sealed)
        else:
            secret = await self.factors.confirmed_secret(user_id)
        if secret is None:
            return False
        step = totp.matching_step(secret, code, utcnow(), self.settings.mfa.totp_window)
        return step is not None and await self.factors.accept_totp_step(user_id, step)

    async def _before_attempt(self, identity: Identity, ctx: RequestContext) -> None:
        guard = self._deps.guard
        await guard.count(Limiter.ip_login, ctx.ip or "unknown", ctx)
        password_keys, second_step_keys = self._deps.lock_keys(identity, ctx)
        await guard.count(Limiter.account_login, password_keys.network, ctx)
        await guard.ensure_unlocked(password_keys, second_step_keys)

    async def _after_attempt(
        self, identity: Identity, ok: bool, factor: str, ctx: RequestContext
    ) -> None:
        guard = self._deps.guard
        both = self._deps.lock_keys(identity, ctx)
        if ok:
            await guard.succeeded(*both)
            return
        await self._deps.audit.record(
            events.MFA_FAILED,
            ctx,
            outcome="failure",
            subject=identity.id,
            details={"factor": factor},
        )
        for keys in both:
            await guard.record_failure(keys, identity.id, ctx)
        raise InvalidFactor

    # ---- administration ----------------------------------------------------------------------

    async def reset(self, identity: Identity, ctx: RequestContext) -> None:
        """Remove every factor of a user (an administrator's act: audited, the user mailed).

        The grace period starts again, so a required role gets time to enrol anew."""
        async with self._deps.db.transaction() as s:
            for table in (TotpSecret, RecoveryCode, PasskeyCredential, MfaEnrolmentGrace):
                await s.execute(delete(table).where(table.user_id == identity.id))
        await self._deps.audit.record(events.MFA_RESET_BY_ADMIN, ctx, subject=identity.id)
        deps = self._deps
        await deps.notify(identity, mails.factors_reset(deps.issuer, deps.language(identity)))
