"""Single-use tokens sent by email (verification and reset links): stored as SHA-256 only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.errors import InvalidOneTimeToken
from auth_service.accounts.models import OneTimeToken, User
from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.security.random import new_token, token_digest

MAX_TOKEN_LENGTH = 512


class Purpose(StrEnum):
    email_verify = "email_verify"
    password_reset = "password_reset"  # noqa: S105 - a purpose name, not a secret


@dataclass(frozen=True)
class TokenHolder:
    """The account a valid, unspent token belongs to (read without spending it)."""

    user_id: uuid.UUID
    email: str
    status: str


def _well_formed(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN_LENGTH


async def issue(
    s: AsyncSession,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    purpose: Purpose,
    ttl_seconds: int,
) -> str:
    """A new token for the user, inside the caller's transaction. Older unused tokens of the
    same purpose stop working: only the newest link does."""
    token = new_token()
    now = utcnow()
    await s.execute(
        delete(OneTimeToken).where(
            OneTimeToken.user_id == user_id,
            OneTimeToken.purpose == purpose.value,
            OneTimeToken.used_at.is_(None),
        )
    )
    s.add(
        OneTimeToken(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            user_id=user_id,
            purpose=purpose.value,
            token_hash=token_digest(token),
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
    )
    return token


async def consume(s: AsyncSession, token: str, purpose: Purpose) -> uuid.UUID:
    """Spend a valid token in one conditional UPDATE (of two concurrent uses exactly one
    wins); the user it belongs to. Raises InvalidOneTimeToken."""
    if not _well_formed(token):
        raise InvalidOneTimeToken
    now = utcnow()
    user_id = await s.scalar(
        update(OneTimeToken)
        .where(
            OneTimeToken.token_hash == token_digest(token),
            OneTimeToken.purpose == purpose.value,
            OneTimeToken.used_at.is_(None),
            OneTimeToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(OneTimeToken.user_id)
    )
    if user_id is None:
        raise InvalidOneTimeToken
    return uuid.UUID(str(user_id))


async def holder(db: Database, token: str, purpose: Purpose) -> TokenHolder:
    """Who a valid, unspent token belongs to, without spending it (e.g. to check a new
    password against the policy first). Raises InvalidOneTimeToken."""
    if not _well_formed(token):
        raise InvalidOneTimeToken
    async with db.single() as conn:
        row = (
            await conn.execute(
                select(User.id, User.email, User.status)
                .join(OneTimeToken, OneTimeToken.user_id == User.id)
                .where(
                    OneTimeToken.token_hash == token_digest(token),
                    OneTimeToken.purpose == purpose.value,
                    OneTimeToken.used_at.is_(None),
                    OneTimeToken.expires_at > utcnow(),
                )
            )
        ).first()
    if row is None:
        raise InvalidOneTimeToken
    return TokenHolder(row.id, row.email, row.status)
