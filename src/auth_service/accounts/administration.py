"""User management: profile edits by the user, and the admin API's changes and deletions."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select, update

from auth_service.accounts.credentials import Credentials
from auth_service.accounts.deps import AccountDeps
from auth_service.accounts.emails import lookup_form
from auth_service.accounts.errors import LastAdmin, UserNotFound
from auth_service.accounts.identity import Identity, IdentityReader, UserStatus
from auth_service.accounts.models import User, UserRole
from auth_service.accounts.roles import active_admins, role_id
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.db.base import utcnow


class UserAdministration:
    def __init__(
        self, deps: AccountDeps, identities: IdentityReader, credentials: Credentials
    ) -> None:
        self._deps = deps
        self._identities = identities
        self._credentials = credentials

    async def get(self, user_id: uuid.UUID) -> Identity:
        """The user, read fresh. Raises UserNotFound."""
        found = await self._identities.identity(user_id)
        if found is None:
            raise UserNotFound
        return found

    async def find(self, email: str) -> Identity:
        """The tenant's user with this email (compared in its normal form, as at sign-in).
        Raises UserNotFound."""
        found = await self._identities.by_email(self._deps.tenant_id, lookup_form(email))
        if found is None:
            raise UserNotFound
        return found

    async def list_users(
        self, *, email: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Identity], int]:
        """A page of the tenant's users, oldest first, and the total."""
        return await self._identities.page(
            self._deps.tenant_id, email=email, limit=limit, offset=offset
        )

    async def update_profile(self, user_id: uuid.UUID, name: str | None) -> Identity:
        """The user's own profile change. Raises UserNotFound."""
        async with self._deps.db.transaction() as s:
            result = await s.execute(
                update(User).where(User.id == user_id).values(name=name, updated_at=utcnow())
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise UserNotFound
        await self._deps.user_changed(user_id)
        return await self.get(user_id)

    async def admin_update(
        self,
        user_id: uuid.UUID,
        ctx: RequestContext,
        *,
        status: UserStatus | None = None,
        roles: list[str] | None = None,
        name: str | None = None,
        set_name: bool = False,
    ) -> Identity:
        """Disable/enable (disabling revokes every session), set roles or name.

        Never leaves a tenant that has an active admin without one. Raises UserNotFound,
        LastAdmin or ValueError (an unknown role).
        """
        changes: dict[str, object] = {}
        async with self._deps.db.transaction() as s:
            user = await s.get(User, user_id, with_for_update=True)
            if user is None:
                raise UserNotFound
            admins_before = await active_admins(s, user.tenant_id)
            if status is not None and status != user.status:
                user.status = status.value
                changes["status"] = status.value
            if set_name:
                user.name = name
                changes["name"] = "updated"
            if roles is not None:
                wanted = {await role_id(s, user.tenant_id, r) for r in set(roles)}
                await s.execute(delete(UserRole).where(UserRole.user_id == user_id))
                for wanted_id in wanted:
                    s.add(UserRole(tenant_id=user.tenant_id, user_id=user_id, role_id=wanted_id))
                changes["roles"] = sorted(set(roles))
            user.updated_at = utcnow()
            await s.flush()
            if admins_before and await active_admins(s, user.tenant_id) == 0:
                raise LastAdmin
        await self._deps.user_changed(user_id)
        if changes.get("status") == UserStatus.disabled:
            await self._deps.revoker.revoke_user_sessions(user_id, reason="disabled")
        await self._deps.audit.record(
            events.ADMIN_USER_UPDATED, ctx, subject=user_id, details=changes
        )
        return await self.get(user_id)

    async def admin_delete(self, user_id: uuid.UUID, ctx: RequestContext) -> None:
        """Delete a user (sessions and tokens go with it). Raises UserNotFound or LastAdmin."""
        await self._delete(user_id)
        await self._deps.audit.record(events.ADMIN_USER_DELETED, ctx, subject=user_id)

    async def _delete(self, user_id: uuid.UUID) -> None:
        async with self._deps.db.transaction() as s:
            tenant_id = await s.scalar(select(User.tenant_id).where(User.id == user_id))
            if tenant_id is None:
                raise UserNotFound
            admins_before = await active_admins(s, tenant_id)
            await s.execute(delete(User).where(User.id == user_id))
            if admins_before and await active_admins(s, tenant_id) == 0:
                raise LastAdmin
        await self._deps.user_changed(user_id)
