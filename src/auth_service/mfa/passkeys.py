"""Passkeys (WebAuthn credentials): register, list, rename, remove, and check an assertion.

The ceremonies themselves are ``ceremonies``; this module stores credentials and applies the
sign-count rule: a counter that went backwards is audited as a possible clone and refused.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from auth_service.accounts.identity import Identity
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.db.base import utcnow
from auth_service.mfa import ceremonies, mails
from auth_service.mfa.deps import MfaDeps, SessionAuth
from auth_service.mfa.errors import (
    FactorDisabled,
    FactorNotFound,
    InvalidFactor,
    InvalidPasskeyName,
)
from auth_service.mfa.factors import Factors
from auth_service.mfa.models import PasskeyCredential
from auth_service.security.aead import MasterKeyError

MAX_NAME = 64
MAX_PASSKEYS = 20
REGISTRATION_TTL_SECONDS = 300
_REGISTRATION_AAD = b"mfa-passkey-registration"


@dataclass(frozen=True)
class PasskeyInfo:
    id: uuid.UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None
    device_type: str
    backed_up: bool


@dataclass(frozen=True)
class PasskeyUse:
    """A verified assertion: whose credential, and what it proves."""

    user_id: uuid.UUID
    credential: uuid.UUID
    device_type: str
    user_verified: bool


def clean_name(name: str | None, fallback: str) -> str:
    """A passkey's display name: trimmed, printable, at most 64 characters."""
    text = (name or "").strip() or fallback
    if len(text) > MAX_NAME or any(ch < " " or ch == "\x7f" for ch in text):
        raise InvalidPasskeyName
    return text


class Passkeys:
    def __init__(self, deps: MfaDeps, factors: Factors) -> None:
        self._deps = deps
        self._factors = factors

    def require_enabled(self) -> None:
        if not (self._deps.settings.mfa.enabled and self._deps.settings.mfa.passkeys):
            raise FactorDisabled

    async def of_user(self, user_id: uuid.UUID) -> list[PasskeyInfo]:
        async with self._deps.db.single() as conn:
            rows = (
                await conn.execute(
                    select(
                        PasskeyCredential.id,
                        PasskeyCredential.name,
                        PasskeyCredential.created_at,
                        PasskeyCredential.last_used_at,
                        PasskeyCredential.device_type,
                        PasskeyCredential.backed_up,
                    )
                    .where(PasskeyCredential.user_id == user_id)
                    .order_by(PasskeyCredential.created_at)
                )
            ).all()
        return [PasskeyInfo(*row) for row in rows]

    async def _descriptors(self, user_id: uuid.UUID) -> list[tuple[bytes, list[str] | None]]:
        async with self._deps.db.single() as conn:
            rows = (
                await conn.execute(
                    select(PasskeyCredential.credential_id, PasskeyCredential.transports).where(
                        PasskeyCredential.user_id == user_id
                    )
                )
            ).all()
        return [(row.credential_id, row.transports) for row in rows]

    async def registration_options(self, identity: Identity) -> tuple[dict[str, Any], str]:
        """Options for ``navigator.credentials.create()``, and the registration token that
        carries their challenge back: sealed under the master key with the user and an
        expiry, so enrolment keeps no server state (a replayed attestation could only
        register the same credential again, which is refused)."""
        self.require_enabled()
        options, challenge = ceremonies.registration_options(
            self._deps.rp,
            identity.id,
            identity.email,
            identity.name or identity.email,
            await self._descriptors(identity.id),
        )
        claims = {
            "c": ceremonies.b64url(challenge),
            "u": str(identity.id),
            "e": int(time.time()) + REGISTRATION_TTL_SECONDS,
        }
        sealed = self._deps.master_key.seal(json.dumps(claims).encode(), _REGISTRATION_AAD)
        return options, ceremonies.b64url(sealed)

    def _challenge_of(self, token: str, user_id: uuid.UUID) -> bytes:
        """The challenge of a registration token of this user, unexpired; else InvalidFactor."""
        try:
            if len(token) > 512:
                raise ValueError
            raw = self._deps.master_key.open(ceremonies.unb64url(token), _REGISTRATION_AAD)
            claims = json.loads(raw)
            if claims["u"] != str(user_id) or int(claims["e"]) < time.time():
                raise ValueError
            return ceremonies.unb64url(str(claims["c"]))
        except (MasterKeyError, ValueError, KeyError, TypeError):
            raise InvalidFactor from None

    async def register(
        self,
        identity: Identity,
        credential: Any,
        registration_token: str,
        name: str | None,
        ctx: RequestContext,
    ) -> PasskeyInfo:
        """Verify the attestation (W3C WebAuthn section 7.1) and keep the credential.
        Raises FactorDisabled, InvalidPasskeyName or InvalidFactor."""
        self.require_enabled()
        deps = self._deps
        existing = await self.of_user(identity.id)
        label = clean_name(name, f"Passkey {len(existing) + 1}")
        if len(existing) >= MAX_PASSKEYS:
            raise InvalidFactor
        challenge = self._challenge_of(registration_token, identity.id)
        found = ceremonies.verify_registration(deps.rp, credential, challenge)
        now = utcnow()
        passkey_id = uuid.uuid4()
        async with deps.db.transaction() as s:
            taken = await s.scalar(
                select(func.count())
                .select_from(PasskeyCredential)
                .where(PasskeyCredential.credential_id == found.credential_id)
            )
            if taken:
                raise InvalidFactor  # registered already (to this or another account)
            await s.execute(
                insert(PasskeyCredential).values(
                    id=passkey_id,
                    tenant_id=identity.tenant_id,
                    user_id=identity.id,
                    credential_id=found.credential_id,
                    public_key=found.public_key,
                    sign_count=found.sign_count,
                    name=label,
                    aaguid=found.aaguid,
                    transports=found.transports,
                    device_type=found.device_type,
                    backed_up=found.backed_up,
                    created_at=now,
                )
            )
        await deps.audit.record(
            events.MFA_PASSKEY_ADDED,
            ctx,
            subject=identity.id,
            details={"passkey_id": str(passkey_id), "device_type": found.device_type},
        )
        await deps.notify(
            identity, mails.factor_added(mails.PASSKEY, deps.issuer, deps.language(identity))
        )
        return PasskeyInfo(passkey_id, label, now, None, found.device_type, found.backed_up)

    async def rename(
        self, user_id: uuid.UUID, passkey_id: uuid.UUID, name: str, ctx: RequestContext
    ) -> None:
        """Raises InvalidPasskeyName or FactorNotFound."""
        label = clean_name(name, "")
        if not label:
            raise InvalidPasskeyName
        async with self._deps.db.single() as conn:
            result = await conn.execute(
                update(PasskeyCredential)
                .where(PasskeyCredential.id == passkey_id, PasskeyCredential.user_id == user_id)
                .values(name=label)
            )
        if result.rowcount != 1:
            raise FactorNotFound
        await self._deps.audit.record(
            events.MFA_PASSKEY_RENAMED,
            ctx,
            subject=user_id,
            details={"passkey_id": str(passkey_id)},
        )

    async def remove(
        self, identity: Identity, passkey_id: uuid.UUID, auth: SessionAuth, ctx: RequestContext
    ) -> None:
        """Raises StepUpRequired or FactorNotFound."""
        self._factors.check_recent(auth)
        deps = self._deps
        async with deps.db.single() as conn:
            result = await conn.execute(
                delete(PasskeyCredential).where(
                    PasskeyCredential.id == passkey_id, PasskeyCredential.user_id == identity.id
                )
            )
        if result.rowcount != 1:
            raise FactorNotFound
        await deps.audit.record(
            events.MFA_PASSKEY_REMOVED,
            ctx,
            subject=identity.id,
            details={"passkey_id": str(passkey_id)},
        )
        await deps.notify(
            identity, mails.factor_removed(mails.PASSKEY, deps.issuer, deps.language(identity))
        )

    # ---- signing in ------------------------------------------------------------------------

    async def authentication_options(
        self, user_id: uuid.UUID | None
    ) -> tuple[dict[str, Any], bytes]:
        """Options for ``navigator.credentials.get()``: the user's credentials as a second
        factor; none (any discoverable credential, user verification required) for a
        passwordless sign-in."""
        self.require_enabled()
        allowed = await self._descriptors(user_id) if user_id is not None else []
        return ceremonies.authentication_options(self._deps.rp, allowed, require_uv=user_id is None)

    async def verify(
        self,
        credential: Any,
        challenge: bytes,
        ctx: RequestContext,
        *,
        user_id: uuid.UUID | None,
        require_uv: bool,
    ) -> PasskeyUse:
        """Check an assertion (section 7.2). ``user_id`` None: a usernameless sign-in, whose
        user is the credential's owner, and whose user handle must name that owner.
        Raises FactorDisabled or InvalidFactor (a regressed sign count is audited first)."""
        self.require_enabled()
        deps = self._deps
        parsed = ceremonies.parse_assertion(credential)
        async with deps.db.single() as conn:
            row = (
                await conn.execute(
                    select(
                        PasskeyCredential.id,
                        PasskeyCredential.user_id,
                        PasskeyCredential.public_key,
                        PasskeyCredential.sign_count,
                    ).where(PasskeyCredential.credential_id == parsed.raw_id)
                )
            ).first()
        if row is None or (user_id is not None and row.user_id != user_id):
            raise InvalidFactor
        handle = parsed.response.user_handle
        if user_id is None and (handle is None or handle != row.user_id.bytes):
            raise InvalidFactor  # section 7.2 step 6: the user handle names the owner
        asserted = ceremonies.verify_assertion(
            deps.rp, parsed, challenge, row.public_key, require_uv=require_uv
        )
        if ceremonies.sign_count_regressed(row.sign_count, asserted.new_sign_count):
            await deps.audit.record(
                events.MFA_PASSKEY_CLONE_SUSPECTED,
                ctx,
                outcome="denied",
                subject=row.user_id,
                details={
                    "passkey_id": str(row.id),
                    "stored": row.sign_count,
                    "presented": asserted.new_sign_count,
                },
            )
            raise InvalidFactor
        async with deps.db.single() as conn:
            await conn.execute(
                update(PasskeyCredential)
                .where(PasskeyCredential.id == row.id)
                .values(sign_count=asserted.new_sign_count, last_used_at=utcnow())
            )
        return PasskeyUse(row.user_id, row.id, asserted.device_type, asserted.user_verified)
