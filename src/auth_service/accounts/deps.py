"""What every account use case shares: the database, settings, hashing, limits, audit, mail.

One ``AccountDeps`` is built per process and handed to each use case; hot reload replaces
``settings`` on it once, and every use case reads the new values from its next call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from auth_service.accounts.errors import WeakPassword
from auth_service.accounts.guard import AttemptGuard
from auth_service.accounts.invalidation import IdentityInvalidation
from auth_service.accounts.policy import check_password
from auth_service.audit.service import AuditService
from auth_service.config.settings import Settings
from auth_service.db.base import DEFAULT_TENANT_ID
from auth_service.db.engine import Database
from auth_service.mail.service import MailService
from auth_service.security.passwords import PasswordHasher


class SessionRevoker(Protocol):
    """Ends a user's sessions (implemented by the sessions domain, which depends on us)."""

    async def revoke_user_sessions(
        self, user_id: uuid.UUID, *, reason: str, keep: uuid.UUID | None = None
    ) -> int: ...


@dataclass
class AccountDeps:
    db: Database
    settings: Settings
    hasher: PasswordHasher
    guard: AttemptGuard
    audit: AuditService
    mail: MailService
    revoker: SessionRevoker
    # The tenant new accounts belong to and sign-in looks in (settings.default_tenant,
    # resolved by AccountService.start).
    tenant_id: uuid.UUID = DEFAULT_TENANT_ID
    # Every process's identity cache forgets a changed user (ADR 0431); None: no cache.
    invalidation: IdentityInvalidation | None = None

    async def user_changed(self, user_id: uuid.UUID) -> None:
        """After a committed write to the user (or their roles), before responding."""
        if self.invalidation is not None:
            await self.invalidation.user_changed(user_id)

    async def every_user_changed(self) -> None:
        """After a committed write that changes many users (a role renamed or deleted)."""
        if self.invalidation is not None:
            await self.invalidation.every_user_changed()

    def language(self, locale: str | None) -> str:
        """The language of a user's emails: theirs, else the configured default."""
        return locale or self.settings.ui.default_locale

    def enforce_password_policy(self, password: str, email: str) -> None:
        """Raise WeakPassword with every reason the policy refuses ``password``."""
        reasons = check_password(password, self.settings.passwords, email)
        if reasons:
            raise WeakPassword(reasons)
