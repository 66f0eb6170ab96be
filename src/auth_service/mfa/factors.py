"""Managing TOTP and recovery codes: enrol, confirm, remove, generate.

Removing a factor or regenerating codes needs a recent sign-in (``policy.check_recent``);
adding or removing one mails the user.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, insert, select, update

from auth_service.accounts.identity import Identity
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.db.base import utcnow
from auth_service.mfa import mails, recovery, totp
from auth_service.mfa.deps import MfaDeps, SessionAuth
from auth_service.mfa.errors import (
    FactorExists,
    FactorNotFound,
    InvalidFactor,
    NothingToConfirm,
)
from auth_service.mfa.models import RecoveryCode, TotpSecret
from auth_service.mfa.policy import check_recent


class Factors:
    def __init__(self, deps: MfaDeps) -> None:
        self._deps = deps

    def recovery_key(self) -> bytes:
        return self._deps.master_key.derive("mfa-recovery-codes")

    def check_recent(self, auth: SessionAuth) -> None:
        """Raise StepUpRequired unless the session signed in recently enough."""
        mfa = self._deps.settings.mfa
        check_recent(
            mfa, mfa.step_up.factor_removal, acr=auth.acr, auth_time=auth.auth_time, now=utcnow()
        )

    # ---- TOTP ------------------------------------------------------------------------------

    async def begin_totp(self, identity: Identity) -> totp.TotpEnrolment:
        """A new secret waiting for its first code (RFC 6238), replacing any unconfirmed one.
        A confirmed authenticator stays until removed: raises FactorExists."""
        deps = self._deps
        enrolment = totp.enrolment(identity.email, deps.issuer)
        sealed = deps.master_key.seal(enrolment.secret.encode(), deps.totp_aad(identity.id))
        async with deps.db.transaction() as s:
            confirmed = await s.scalar(
                select(TotpSecret.confirmed_at).where(TotpSecret.user_id == identity.id)
            )
            if confirmed is not None:
                raise FactorExists
            await s.execute(delete(TotpSecret).where(TotpSecret.user_id == identity.id))
            await s.execute(
                insert(TotpSecret).values(
                    user_id=identity.id,
                    tenant_id=identity.tenant_id,
                    secret_sealed=sealed,
                    created_at=utcnow(),
                )
            )
        return enrolment

    async def pending_totp(self, identity: Identity) -> totp.TotpEnrolment | None:
        """The unconfirmed enrolment again (the page shows it until the first code)."""
        secret = await self._secret(identity.id, confirmed=False)
        if secret is None:
            return None
        uri = totp.provisioning_uri(secret, identity.email, self._deps.issuer)
        return totp.TotpEnrolment(secret, uri, totp.qr_svg(uri))

    async def confirm_totp(self, identity: Identity, code: str, ctx: RequestContext) -> None:
        """The first code proves the app holds the secret. Raises NothingToConfirm or
        InvalidFactor."""
        deps = self._deps
        secret = await self._secret(identity.id, confirmed=False)
        if secret is None:
            raise NothingToConfirm
        now = utcnow()
        step = totp.matching_step(secret, code, now, deps.settings.mfa.totp_window)
        if step is None:
            raise InvalidFactor
        async with deps.db.single() as conn:
            result = await conn.execute(
                update(TotpSecret)
                .where(TotpSecret.user_id == identity.id, TotpSecret.confirmed_at.is_(None))
                .values(confirmed_at=now, last_step=step)
            )
        if result.rowcount != 1:
            raise NothingToConfirm
        await deps.audit.record(events.MFA_TOTP_ENROLLED, ctx, subject=identity.id)
        await self._notify_added(identity, mails.TOTP)

    async def remove_totp(self, identity: Identity, auth: SessionAuth, ctx: RequestContext) -> None:
        """Raises StepUpRequired or FactorNotFound."""
        self.check_recent(auth)
        async with self._deps.db.single() as conn:
            result = await conn.execute(
                delete(TotpSecret).where(
                    TotpSecret.user_id == identity.id, TotpSecret.confirmed_at.is_not(None)
                )
            )
        if result.rowcount != 1:
            raise FactorNotFound
        await self._deps.audit.record(events.MFA_TOTP_REMOVED, ctx, subject=identity.id)
        await self._notify_removed(identity, mails.TOTP)

    async def _secret(self, user_id: uuid.UUID, *, confirmed: bool) -> str | None:
        deps = self._deps
        condition = (
            TotpSecret.confirmed_at.is_not(None) if confirmed else TotpSecret.confirmed_at.is_(None)
        )
        async with deps.db.single() as conn:
            sealed = await conn.scalar(
                select(TotpSecret.secret_sealed).where(TotpSecret.user_id == user_id, condition)
            )
        if sealed is None:
            return None
        return self.open_secret(user_id, sealed)

    def open_secret(self, user_id: uuid.UUID, sealed: bytes) -> str:
        """A TOTP secret as stored (sealed under the master key, bound to ``user_id``)."""
        deps = self._deps
        return deps.master_key.open(sealed, deps.totp_aad(user_id)).decode()

    async def confirmed_secret(self, user_id: uuid.UUID) -> str | None:
        return await self._secret(user_id, confirmed=True)

    # ---- recovery codes ----------------------------------------------------------------------

    async def generate_recovery_codes(
        self, identity: Identity, auth: SessionAuth | None, ctx: RequestContext
    ) -> list[str]:
        """A new set (shown once); the old set stops working in the same transaction.

        Regenerating (a set exists) needs a recent sign-in: raises StepUpRequired.
        """
        deps = self._deps
        if await self.recovery_codes_left(identity.id) and auth is not None:
            self.check_recent(auth)
        codes = [recovery.new_code() for _ in range(deps.settings.mfa.recovery_codes)]
        key = self.recovery_key()
        now = utcnow()
        rows = [
            {
                "id": uuid.uuid4(),
                "tenant_id": identity.tenant_id,
                "user_id": identity.id,
                "code_hash": recovery.code_hash(key, identity.id, recovery.normalize(c) or ""),
                "created_at": now,
            }
            for c in codes
        ]
        async with deps.db.transaction() as s:
            await s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == identity.id))
            await s.execute(insert(RecoveryCode), rows)
        await deps.audit.record(
            events.MFA_RECOVERY_CODES_GENERATED,
            ctx,
            subject=identity.id,
            details={"count": len(codes)},
        )
        return codes

    async def recovery_codes_left(self, user_id: uuid.UUID) -> int:
        async with self._deps.db.single() as conn:
            count = await conn.scalar(
                select(func.count())
                .select_from(RecoveryCode)
                .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
            )
        return int(count or 0)

    async def use_recovery_code(self, user_id: uuid.UUID, code: str) -> bool:
        """Spend one unused code of the user. Of concurrent uses of one code exactly one gets
        True: the conditional UPDATE matches once (a row lock and re-check on PostgreSQL,
        BEGIN IMMEDIATE on SQLite)."""
        normalized = recovery.normalize(code)
        if normalized is None:
            return False
        digest = recovery.code_hash(self.recovery_key(), user_id, normalized)
        async with self._deps.db.single() as conn:
            result = await conn.execute(
                update(RecoveryCode)
                .where(
                    RecoveryCode.user_id == user_id,
                    RecoveryCode.code_hash == digest,
                    RecoveryCode.used_at.is_(None),
                )
                .values(used_at=utcnow())
            )
        return result.rowcount == 1

    async def accept_totp_step(self, user_id: uuid.UUID, step: int) -> bool:
        """Record ``step`` as the last accepted one, unless it (or a later one) already was:
        RFC 6238 section 5.2, a code is accepted once. Atomic: of two concurrent uses of one
        code, one wins."""
        async with self._deps.db.single() as conn:
            result = await conn.execute(
                update(TotpSecret)
                .where(
                    TotpSecret.user_id == user_id,
                    TotpSecret.confirmed_at.is_not(None),
                    (TotpSecret.last_step.is_(None)) | (TotpSecret.last_step < step),
                )
                .values(last_step=step)
            )
        return result.rowcount == 1

    async def _notify_added(self, identity: Identity, what: str) -> None:
        deps = self._deps
        await deps.notify(identity, mails.factor_added(what, deps.issuer, deps.language(identity)))

    async def _notify_removed(self, identity: Identity, what: str) -> None:
        deps = self._deps
        await deps.notify(
            identity, mails.factor_removed(what, deps.issuer, deps.language(identity))
        )
