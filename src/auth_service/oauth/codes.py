"""Authorization codes (RFC 6749 section 4.1.2): issued hashed, redeemed once.

A code is a 256-bit random value; only its SHA-256 is stored with the request it answers.
Redemption is one conditional UPDATE (unspent, unexpired, of this client) inside the
transaction that opens the grant, so of two concurrent redemptions exactly one wins and the
code records the grant it issued. A spent code presented again is a replay: the caller
revokes that grant (section 4.1.2: "SHOULD revoke ... all tokens previously issued based on
that authorization code").
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.oauth.errors import InvalidGrant, OAuthError
from auth_service.oauth.models import AuthorizationCode
from auth_service.security.random import new_token, token_digest
from auth_service.sessions.grants import PreparedGrant

MAX_CODE_LENGTH = 256


@dataclass(frozen=True)
class CodeRecord:
    """What a code was issued for."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    request: dict[str, Any]

    @property
    def auth_time(self) -> datetime:
        return datetime.fromisoformat(self.request["auth_time"])


class CodeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def issue(
        self,
        *,
        client_pk: uuid.UUID,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        request: dict[str, Any],
        ttl_seconds: int,
    ) -> str:
        """A new code for ``request`` (JSON: what the token endpoint checks and issues)."""
        code = new_token()
        now = utcnow()
        async with self._db.single() as conn:
            await conn.execute(
                insert(AuthorizationCode).values(
                    id=uuid.uuid4(),
                    tenant_id=tenant_id,
                    code_hash=token_digest(code),
                    client_pk=client_pk,
                    user_id=user_id,
                    request=request,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl_seconds),
                )
            )
        return code

    async def redeem(
        self,
        code: str,
        client_pk: uuid.UUID,
        check: Callable[[CodeRecord], None],
        open_grant: Callable[[CodeRecord], PreparedGrant],
    ) -> tuple[CodeRecord, PreparedGrant]:
        """Spend the code and open its grant, atomically. ``check`` raises an OAuthError
        when the token request does not match the code: the code stays spent (a wrong
        verifier must not get a second try). Raises InvalidGrant, or CodeReplayed."""
        if not code or len(code) > MAX_CODE_LENGTH:
            raise InvalidGrant("the authorization code is invalid")
        digest = token_digest(code)
        grant_id: uuid.UUID | None = None
        failure: Exception | None = None
        async with self._db.transaction() as s:
            now = utcnow()
            row = (
                await s.execute(
                    update(AuthorizationCode)
                    .where(
                        AuthorizationCode.code_hash == digest,
                        AuthorizationCode.client_pk == client_pk,
                        AuthorizationCode.used_at.is_(None),
                        AuthorizationCode.expires_at > now,
                    )
                    .values(used_at=now)
                    .returning(
                        AuthorizationCode.id,
                        AuthorizationCode.user_id,
                        AuthorizationCode.tenant_id,
                        AuthorizationCode.request,
                    )
                )
            ).first()
            if row is None:
                failure = await self._why_not(s, digest)
            else:
                record = CodeRecord(row.user_id, row.tenant_id, dict(row.request))
                try:
                    check(record)
                except OAuthError as exc:
                    failure = exc
                else:
                    prepared = open_grant(record)
                    grant_id = prepared.id
                    for statement in prepared.statements:
                        await s.execute(statement)
                    await s.execute(
                        update(AuthorizationCode)
                        .where(AuthorizationCode.id == row.id)
                        .values(grant_id=grant_id)
                    )
        if failure is not None:
            raise failure
        return record, prepared

    @staticmethod
    async def _why_not(s: Any, digest: bytes) -> Exception:
        spent = (
            await s.execute(
                select(AuthorizationCode.used_at, AuthorizationCode.grant_id).where(
                    AuthorizationCode.code_hash == digest
                )
            )
        ).first()
        if spent is not None and spent.used_at is not None:
            return CodeReplayed(spent.grant_id)
        return InvalidGrant("the authorization code is invalid, expired or not this client's")


class CodeReplayed(InvalidGrant):
    """A spent code presented again; ``grant_id`` is what it issued (None: nothing)."""

    def __init__(self, grant_id: uuid.UUID | None) -> None:
        super().__init__("the authorization code was already used")
        self.grant_id = grant_id
