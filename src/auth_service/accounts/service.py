"""The accounts domain: one object per use case, sharing their dependencies.

``AccountService`` is what the rest of the service holds; each attribute is a use case
(``registration``, ``credentials``, ``recovery``, ``verification``, ``users``) or the read
model (``identities``). Sessions live in the sessions domain, which depends on this one: the
revocations accounts need (password change, reset, disabling) come in as a ``SessionRevoker``.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from auth_service.accounts.administration import UserAdministration
from auth_service.accounts.credentials import Credentials
from auth_service.accounts.deps import AccountDeps, SessionRevoker
from auth_service.accounts.guard import AttemptGuard
from auth_service.accounts.identity import IdentityReader
from auth_service.accounts.importing import UserImport
from auth_service.accounts.invalidation import IdentityInvalidation
from auth_service.accounts.models import Tenant
from auth_service.accounts.recovery import PasswordRecovery
from auth_service.accounts.registration import Registration
from auth_service.accounts.roles import RoleAdministration
from auth_service.accounts.verification import EmailVerification
from auth_service.audit.service import AuditService
from auth_service.config.settings import Settings
from auth_service.db.engine import Database
from auth_service.mail.service import MailService
from auth_service.security.lockout import LockoutStore
from auth_service.security.passwords import PasswordHasher
from auth_service.security.ratelimit import RateLimiter


class UnknownTenant(Exception):
    """``default_tenant`` names no tenant of the database."""


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
        revoker: SessionRevoker,
        invalidation: IdentityInvalidation | None = None,
    ) -> None:
        self._deps = AccountDeps(
            db, settings, hasher, AttemptGuard(limiter, lockout, audit), audit, mail, revoker
        )
        self._deps.invalidation = invalidation
        self.identities = IdentityReader(db)
        self.verification = EmailVerification(self._deps, self.identities)
        self.credentials = Credentials(self._deps, self.identities)
        self.recovery = PasswordRecovery(self._deps, self.credentials, self.identities)
        self.registration = Registration(
            self._deps, self.identities, self.verification, self.recovery
        )
        self.users = UserAdministration(self._deps, self.identities, self.credentials)
        self.imports = UserImport(self._deps)
        self.roles = RoleAdministration(self._deps)

    @property
    def tenant_id(self) -> uuid.UUID:
        """The tenant new accounts belong to (``default_tenant``, resolved by ``start``)."""
        return self._deps.tenant_id

    async def user_changed(self, user_id: uuid.UUID) -> None:
        """Another domain changed the user or their roles (committed): every process's
        identity cache forgets them (ADR 0431)."""
        await self._deps.user_changed(user_id)

    def apply_settings(self, settings: Settings) -> None:
        """Hot reload: password policy, features and token lifetimes apply from the next call."""
        self._deps.settings = settings

    async def start(self) -> None:
        """Resolve ``default_tenant`` (a slug) to the tenant new accounts belong to.

        Raises UnknownTenant with what to do when the database has no such tenant.
        """
        slug = self._deps.settings.default_tenant
        async with self._deps.db.single() as conn:
            tenant_id = await conn.scalar(select(Tenant.id).where(Tenant.slug == slug))
        if tenant_id is None:
            raise UnknownTenant(
                f"default_tenant {slug!r} does not exist in the database; set default_tenant "
                "to an existing tenant's slug (the first migration creates 'default')"
            )
        self._deps.tenant_id = tenant_id
