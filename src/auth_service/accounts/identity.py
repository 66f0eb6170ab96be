"""The identity read model: a user with their roles, as every other domain sees them.

One query shape (``identity_select``) and one builder (``identities_from_rows``) are the only
way a user and their roles become an ``Identity``, wherever the rows come from: a lookup by id
or email, a page of the admin list, the bearer freshness check or the refresh statement of
the sessions domain (which join their own tables to the same shape).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Join, Select, func, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import InstrumentedAttribute

from auth_service.accounts.emails import fold
from auth_service.accounts.models import Role, User, UserRole
from auth_service.db.engine import Database


class UserStatus(StrEnum):
    active = "active"
    disabled = "disabled"


class BuiltinRole(StrEnum):
    """Roles the first migration creates in every tenant; other roles are data."""

    admin = "admin"


@dataclass(frozen=True)
class Identity:
    """What other domains may know about a user."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    name: str | None
    status: UserStatus
    email_verified_at: datetime | None
    roles: tuple[str, ...]
    created_at: datetime
    last_login_at: datetime | None
    locale: str | None = None  # the language of pages and emails the user last chose
    deletion_due_at: datetime | None = None  # a self-service deletion is pending until then

    @property
    def active(self) -> bool:
        return self.status is UserStatus.active

    @property
    def is_admin(self) -> bool:
        return self.active and BuiltinRole.admin in self.roles


# The columns of an Identity, in one place; ``identities_from_rows`` reads them by name.
IDENTITY_COLUMNS: tuple[InstrumentedAttribute[Any], ...] = (
    User.id,
    User.tenant_id,
    User.email,
    User.name,
    User.status,
    User.email_verified_at,
    User.created_at,
    User.last_login_at,
    User.locale,
    User.deletion_due_at,
)


ROLE_COLUMN = Role.name.label("role")


def with_roles(users: FromClause) -> Join:
    """``users`` (a FROM that contains the users table) joined to each user's role names,
    selected as ROLE_COLUMN: one row per role, or one row with ``role`` NULL."""
    return users.outerjoin(UserRole, UserRole.user_id == User.id).outerjoin(
        Role, Role.id == UserRole.role_id
    )


def identity_select(*extra: InstrumentedAttribute[Any] | ColumnElement[Any]) -> Select[Any]:
    """User columns (plus ``extra``) and role names (``with_roles``). Callers add their own
    joins and conditions."""
    return select(*IDENTITY_COLUMNS, *extra, ROLE_COLUMN).select_from(with_roles(User.__table__))


def identities_from_rows(rows: Sequence[Row[Any]]) -> list[Identity]:
    """One Identity per user of ``identity_select`` rows, in the order users first appear."""
    roles: dict[uuid.UUID, list[str]] = {}
    first: dict[uuid.UUID, Row[Any]] = {}
    for row in rows:
        if row.id not in first:
            first[row.id] = row
            roles[row.id] = []
        if row.role is not None:
            roles[row.id].append(row.role)
    return [
        Identity(
            u.id,
            u.tenant_id,
            u.email,
            u.name,
            UserStatus(u.status),
            u.email_verified_at,
            tuple(sorted(roles[u.id])),
            u.created_at,
            u.last_login_at,
            u.locale,
            u.deletion_due_at,
        )
        for u in first.values()
    ]


def identity_from_rows(rows: Sequence[Row[Any]]) -> Identity | None:
    """The Identity of ``identity_select`` rows of one user; None without rows."""
    found = identities_from_rows(rows)
    return found[0] if found else None


@dataclass(frozen=True)
class LoginCandidate:
    """A user found by email for a credential check, with the stored password hash."""

    identity: Identity
    password_hash: str | None


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class IdentityReader:
    """Reads of the identity model; every method is one statement."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def identity(self, user_id: uuid.UUID) -> Identity | None:
        """The user and their roles, read fresh."""
        async with self._db.single() as conn:
            rows = (await conn.execute(identity_select().where(User.id == user_id))).all()
        return identity_from_rows(rows)

    async def login_candidate(self, tenant_id: uuid.UUID, email: str) -> LoginCandidate | None:
        """The user of the tenant with this (normalised) email, with the password hash."""
        async with self._db.single() as conn:
            rows = (
                await conn.execute(
                    identity_select(User.password_hash).where(
                        User.tenant_id == tenant_id, User.email == email
                    )
                )
            ).all()
        identity = identity_from_rows(rows)
        return LoginCandidate(identity, rows[0].password_hash) if identity else None

    async def by_email(self, tenant_id: uuid.UUID, email: str) -> Identity | None:
        """The user of the tenant with this (normalised) email."""
        found = await self.login_candidate(tenant_id, email)
        return found.identity if found else None

    async def page(
        self, tenant_id: uuid.UUID, *, email: str | None, limit: int, offset: int
    ) -> tuple[list[Identity], int]:
        """Users oldest first, optionally those whose email contains ``email``; and the total."""
        users = select(User.id).where(User.tenant_id == tenant_id)
        if email:
            pattern = escape_like(fold(email).strip())
            users = users.where(User.email.like(f"%{pattern}%", escape="\\"))
        window = users.order_by(User.created_at, User.id).limit(limit).offset(offset)
        async with self._db.session() as s:
            total = await s.scalar(select(func.count()).select_from(users.subquery()))
            rows = (
                await s.execute(
                    identity_select()
                    .where(User.id.in_(window.scalar_subquery()))
                    .order_by(User.created_at, User.id)
                )
            ).all()
        return identities_from_rows(rows), int(total or 0)

    async def count(self) -> int:
        async with self._db.single() as conn:
            return int(await conn.scalar(select(func.count()).select_from(User)) or 0)
