"""What every MFA use case shares, and how a caller tells how its session authenticated."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from auth_service.accounts.guard import AttemptGuard
from auth_service.accounts.identity import Identity, IdentityReader
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.config.settings import Settings
from auth_service.db.engine import Database
from auth_service.mail.service import MailService
from auth_service.mfa import mails
from auth_service.mfa.ceremonies import RelyingParty
from auth_service.security.aead import MasterKey
from auth_service.security.lockout import LockKeys


def totp_aad(user_id: uuid.UUID) -> bytes:
    """The associated data of a user's sealed TOTP secret: the seal is bound to its user, so
    a row copied to another user fails to open."""
    return b"mfa-totp\x00" + user_id.bytes


@dataclass(frozen=True)
class SessionAuth:
    """How and when the caller's session authenticated (the session row's acr, auth_time)."""

    acr: str | None
    auth_time: datetime


@dataclass
class MfaDeps:
    db: Database
    settings: Settings  # replaced by hot reload
    master_key: MasterKey
    audit: AuditService
    mail: MailService
    guard: AttemptGuard
    identities: IdentityReader

    @property
    def rp(self) -> RelyingParty:
        return RelyingParty.of(self.settings)

    @property
    def issuer(self) -> str:
        return self.settings.mfa.issuer or self.settings.ui.product_name

    def totp_aad(self, user_id: uuid.UUID) -> bytes:
        return totp_aad(user_id)

    async def notify(self, identity: Identity, rendered: mails.Rendered) -> None:
        """Mail the user (a durable job: it never blocks or fails the change)."""
        await self.mail.send(identity.email, rendered.subject, rendered.text)

    def language(self, identity: Identity) -> str:
        return identity.locale or self.settings.ui.default_locale

    def lock_keys(self, identity: Identity, ctx: RequestContext) -> tuple[LockKeys, LockKeys]:
        """The account's lockout counters (shared with the password) and the second step's
        own, each per client network and account-wide (ADR 0013).

        A right password resets the account's network counter; the second step's survives
        it, so guessing codes behind a known password still backs off (see verification).
        """
        guard = self.guard
        return (
            guard.lock_keys(identity.tenant_id, identity.email, ctx),
            guard.lock_keys(identity.tenant_id, "mfa\x00" + identity.email, ctx),
        )
