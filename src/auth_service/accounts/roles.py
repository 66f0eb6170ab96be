"""Role look-ups shared by the operator's and the admin API's user management."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.identity import BuiltinRole, UserStatus
from auth_service.accounts.models import Role, User, UserRole


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
