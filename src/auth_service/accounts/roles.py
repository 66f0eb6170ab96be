"""Roles: the tenant's role catalogue (created, described, deleted by the operator, audited)
and the look-ups shared by the operator's and the admin API's user management."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.deps import AccountDeps
from auth_service.accounts.identity import BuiltinRole, UserStatus
from auth_service.accounts.models import Role, User, UserRole
from auth_service.audit import events
from auth_service.audit.context import RequestContext

_ROLE_NAME = re.compile(r"^[a-z][a-z0-9_.:-]{0,62}$")
MAX_DESCRIPTION = 200


class InvalidRole(ValueError):
    """A role name or description the catalogue refuses, or a change to a built-in role."""


@dataclass(frozen=True)
class RoleView:
    name: str
    description: str | None
    builtin: bool


class RoleAdministration:
    """The tenant's roles. Built-in roles (``BuiltinRole``) can be described, never deleted."""

    def __init__(self, deps: AccountDeps) -> None:
        self._deps = deps

    async def all(self) -> list[RoleView]:
        """Every role of the tenant, by name."""
        async with self._deps.db.session() as s:
            rows = (
                await s.execute(
                    select(Role.name, Role.description)
                    .where(Role.tenant_id == self._deps.tenant_id)
                    .order_by(Role.name)
                )
            ).all()
        builtin = {r.value for r in BuiltinRole}
        return [RoleView(r.name, r.description, r.name in builtin) for r in rows]

    async def holders(self, name: str) -> list[str]:
        """The emails of the tenant's active users holding role ``name``, sorted."""
        async with self._deps.db.session() as s:
            emails = await s.scalars(
                select(User.email)
                .join(UserRole, UserRole.user_id == User.id)
                .join(Role, Role.id == UserRole.role_id)
                .where(
                    Role.tenant_id == self._deps.tenant_id,
                    Role.name == name,
                    User.status == UserStatus.active.value,
                )
                .order_by(User.email)
            )
            return list(emails)

    async def create(self, name: str, description: str | None, ctx: RequestContext) -> None:
        """A new role. Raises InvalidRole (a bad name or description, or one that exists)."""
        _check(name, description)
        async with self._deps.db.transaction() as s:
            if await _find(s, self._deps.tenant_id, name) is not None:
                raise InvalidRole(f"role {name!r} exists")
            await s.execute(
                insert(Role).values(
                    id=uuid.uuid4(),
                    tenant_id=self._deps.tenant_id,
                    name=name,
                    description=description,
                )
            )
        await self._deps.audit.record(
            events.ADMIN_ROLE_CREATED, ctx, details={"role": name, "described": bool(description)}
        )

    async def describe(self, name: str, description: str | None, ctx: RequestContext) -> None:
        """Set a role's description. Raises InvalidRole (no such role, a bad description)."""
        _check(name, description)
        async with self._deps.db.transaction() as s:
            result = await s.execute(
                update(Role)
                .where(Role.tenant_id == self._deps.tenant_id, Role.name == name)
                .values(description=description)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise InvalidRole(f"no role {name!r}")
        await self._deps.audit.record(
            events.ADMIN_ROLE_UPDATED, ctx, details={"role": name, "changed": ["description"]}
        )

    async def delete(self, name: str, ctx: RequestContext) -> None:
        """Delete a role; the users holding it lose it. Raises InvalidRole (a built-in role,
        or no such role)."""
        if name in {r.value for r in BuiltinRole}:
            raise InvalidRole(f"role {name!r} is built in and cannot be deleted")
        async with self._deps.db.transaction() as s:
            result = await s.execute(
                delete(Role).where(Role.tenant_id == self._deps.tenant_id, Role.name == name)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise InvalidRole(f"no role {name!r}")
        await self._deps.every_user_changed()
        await self._deps.audit.record(events.ADMIN_ROLE_DELETED, ctx, details={"role": name})


def _check(name: str, description: str | None) -> None:
    if not _ROLE_NAME.match(name):
        raise InvalidRole(
            f"role name {name[:70]!r}: 1 to 63 of a-z, 0-9, _ . : - starting with a letter"
        )
    if description is not None and (
        len(description) > MAX_DESCRIPTION or any(ch < " " for ch in description)
    ):
        raise InvalidRole(
            f"description of {name!r}: at most {MAX_DESCRIPTION} printable characters"
        )


async def _find(s: AsyncSession, tenant_id: uuid.UUID, name: str) -> uuid.UUID | None:
    found: uuid.UUID | None = await s.scalar(
        select(Role.id).where(Role.tenant_id == tenant_id, Role.name == name)
    )
    return found


async def role_id(s: AsyncSession, tenant_id: uuid.UUID, name: str) -> uuid.UUID:
    """The id of the tenant's role ``name``; ValueError when the tenant has no such role."""
    found = await s.scalar(select(Role.id).where(Role.tenant_id == tenant_id, Role.name == name))
    if found is None:
        raise ValueError(f"unknown role {name!r}")
    return found


async def active_admins(s: AsyncSession, tenant_id: uuid.UUID) -> int:
    """How many active users of the tenant hold the admin role (inside ``s``'s transaction)."""
    count = await s.scalar(
        select(func.count())
        .select_from(UserRole)
        .join(Role, Role.id == UserRole.role_id)
        .join(User, User.id == UserRole.user_id)
        .where(
            Role.name == BuiltinRole.admin.value,
            User.status == UserStatus.active.value,
            User.tenant_id == tenant_id,
        )
    )
    return int(count or 0)
