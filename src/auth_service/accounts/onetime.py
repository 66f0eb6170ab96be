"""Single-use tokens sent by email (verification and reset links): stored as SHA-256 only.

Rows without a user are decoys (``issue``): written so that a flow costs the same whether or
not an account exists, never spendable.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import Delete, Insert, and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.errors import InvalidOneTimeToken
from auth_service.accounts.models import OneTimeToken, User
from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.mail.service import MailService
from auth_service.mail.templates import Rendered
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


@dataclass(frozen=True)
class Issued:
    """A new token and the two writes that store it, for the caller to run with its own
    writes (``Database.write_together``): one round trip on PostgreSQL."""

    token: str
    writes: tuple[Delete, Insert]


@dataclass(frozen=True)
class Notice:
    """A mail carrying a one-time link: the writes that store the link's token, and the
    message, sent once they are stored; ``to`` None for a decoy (nothing is sent)."""

    to: str | None
    message: Rendered
    writes: tuple[Delete, Insert]

    def mail_job(self, mail: MailService, tenant_id: uuid.UUID) -> Insert:
        """The mail's job, to store with ``writes`` (a decoy job, which never runs, when
        ``to`` is None: both answers write the same rows). ``mail.wake()`` once stored."""
        return mail.prepare(self.to, self.message.subject, self.message.text, tenant_id=tenant_id)


def issue(
    *,
    user_id: uuid.UUID | None,
    tenant_id: uuid.UUID,
    purpose: Purpose,
    ttl_seconds: int,
) -> Issued:
    """A new token for the user; older unused tokens of the same purpose stop working (only
    the newest link does).

    ``user_id`` None issues a *decoy*: a row of no user, which ``consume`` and ``holder``
    never accept, and whose token is sent to no one. Flows that must not reveal whether an
    account exists write one where there is no account, so that both answers cost the same
    statements and the same durable write (ADR 0011). The same DELETE drops expired decoys,
    so at most the decoys of the last ``ttl_seconds`` are kept.
    """
    token = new_token()
    now = utcnow()
    # A bound NULL never equals anything, so a decoy deletes no user's token; the statement
    # text is the same either way.
    owner = bindparam("owner", user_id, type_=OneTimeToken.user_id.type, unique=True)
    older = delete(OneTimeToken).where(
        or_(
            and_(
                OneTimeToken.user_id == owner,
                OneTimeToken.purpose == purpose.value,
                OneTimeToken.used_at.is_(None),
            ),
            and_(OneTimeToken.user_id.is_(None), OneTimeToken.expires_at < now),
        )
    )
    # Every value explicit: the statement may run as a CTE, where defaults are not applied.
    new = insert(OneTimeToken).values(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        user_id=user_id,
        purpose=purpose.value,
        token_hash=token_digest(token),
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
        used_at=None,
    )
    return Issued(token, (older, new))


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
            OneTimeToken.user_id.is_not(None),  # a decoy is never spent
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
