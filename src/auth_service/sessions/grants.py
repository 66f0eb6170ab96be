"""OAuth grants as sessions: one row of ``sessions`` (kind ``oauth``) per grant to a client.

An authorization code exchanged for tokens opens a grant: a session of the user that names
the client, the scope and resources granted, the browser session it was granted in, and the
authentication it rests on. Its refresh tokens rotate exactly like the JSON API's
(``sessions.refresh``, bound to the client); revoking it (revocation endpoint, replayed
code, "Connected apps", logout) ends every token of the grant at once. The oauth domain uses
these methods and never the session tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Insert, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.security.random import new_token, token_digest
from auth_service.sessions.models import RefreshToken, Session, SessionKind, session_usable
from auth_service.sessions.revocation import MAX_REASON_LENGTH

MAX_REFRESH_TOKEN_LENGTH = 256


@dataclass(frozen=True)
class GrantRequest:
    """What a new grant records (from the authorization code it is exchanged for)."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    client_id: str
    scope: str
    resources: tuple[str, ...]
    auth_time: datetime
    amr: tuple[str, ...]
    acr: str | None
    browser_session_id: uuid.UUID | None
    lifetime_seconds: int
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class PreparedGrant:
    """A grant ready to be written inside the caller's transaction (``statements``)."""

    id: uuid.UUID
    refresh_token: str | None
    statements: tuple[Insert, ...]


@dataclass(frozen=True)
class RefreshTokenInfo:
    """A live, unspent refresh token of a client (RFC 7662 introspection)."""

    grant_id: uuid.UUID
    user_id: uuid.UUID
    scope: str
    created_at: datetime
    expires_at: datetime


class GrantSessions:
    def __init__(self, db: Database, idle_seconds: int) -> None:
        self._db = db
        self.idle_seconds = idle_seconds

    def _idle_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self.idle_seconds)

    @staticmethod
    def prepare(grant: GrantRequest, *, refresh: bool) -> PreparedGrant:
        """The grant's session row, and its first refresh token when ``refresh`` (only the
        token's SHA-256 is stored)."""
        grant_id = uuid.uuid4()
        now = utcnow()
        statements: list[Insert] = [
            insert(Session).values(
                id=grant_id,
                tenant_id=grant.tenant_id,
                user_id=grant.user_id,
                created_at=now,
                last_used_at=now,
                expires_at=now + timedelta(seconds=grant.lifetime_seconds),
                ip=grant.ip,
                user_agent=(grant.user_agent or "")[:512] or None,
                kind=SessionKind.oauth.value,
                auth_time=grant.auth_time,
                amr=list(grant.amr),
                acr=grant.acr,
                client_id=grant.client_id,
                scope=grant.scope,
                resources=list(grant.resources),
                browser_session_id=grant.browser_session_id,
            )
        ]
        token = new_token() if refresh else None
        if token is not None:
            statements.append(
                insert(RefreshToken).values(
                    id=uuid.uuid4(),
                    tenant_id=grant.tenant_id,
                    session_id=grant_id,
                    token_hash=token_digest(token),
                    created_at=now,
                )
            )
        return PreparedGrant(grant_id, token, tuple(statements))

    async def refresh_token_info(self, token: str, client_id: str) -> RefreshTokenInfo | None:
        """The unspent refresh token of a live grant of ``client_id``, or None (RFC 7662:
        anything else is inactive for this caller)."""
        if not token or len(token) > MAX_REFRESH_TOKEN_LENGTH:
            return None
        now = utcnow()
        async with self._db.single() as conn:
            row = (
                await conn.execute(
                    select(
                        Session.id,
                        Session.user_id,
                        Session.scope,
                        Session.expires_at,
                        RefreshToken.created_at.label("token_created_at"),
                    )
                    .join(RefreshToken, RefreshToken.session_id == Session.id)
                    .where(
                        RefreshToken.token_hash == token_digest(token),
                        RefreshToken.used_at.is_(None),
                        Session.client_id == client_id,
                        session_usable(now, self._idle_cutoff(now)),
                    )
                )
            ).first()
        if row is None:
            return None
        return RefreshTokenInfo(
            row.id, row.user_id, row.scope or "", row.token_created_at, row.expires_at
        )

    async def grant_of_refresh_token(self, token: str, client_id: str) -> uuid.UUID | None:
        """The grant a refresh token of ``client_id`` belongs to (spent or not), or None."""
        if not token or len(token) > MAX_REFRESH_TOKEN_LENGTH:
            return None
        async with self._db.single() as conn:
            found: uuid.UUID | None = await conn.scalar(
                select(Session.id)
                .join(RefreshToken, RefreshToken.session_id == Session.id)
                .where(
                    RefreshToken.token_hash == token_digest(token),
                    Session.client_id == client_id,
                )
            )
        return found

    async def grant_live(self, grant_id: uuid.UUID, client_id: str) -> bool:
        """Whether the grant of ``client_id`` is still usable (its tokens are active)."""
        now = utcnow()
        async with self._db.single() as conn:
            found = await conn.scalar(
                select(Session.id).where(
                    Session.id == grant_id,
                    Session.client_id == client_id,
                    session_usable(now, self._idle_cutoff(now)),
                )
            )
        return found is not None

    async def revoke_client_grants(self, user_id: uuid.UUID, client_id: str, *, reason: str) -> int:
        """End every grant of the user to the client (consent withdrawn); how many."""
        return await self._revoke(
            (Session.user_id == user_id, Session.client_id == client_id), reason
        )

    async def revoke_all_client_grants(self, client_id: str, *, reason: str) -> int:
        """End every grant to the client (the client was deleted); how many."""
        return await self._revoke((Session.client_id == client_id,), reason)

    @staticmethod
    async def clients_of_browser_sessions(
        session: AsyncSession, browser_session_ids: Sequence[uuid.UUID]
    ) -> list[tuple[uuid.UUID, str]]:
        """(browser session, client) of every grant made in these browser sessions, live or
        not: the clients that received tokens in them (OIDC ``sid``), each pair once. Read
        in the caller's transaction (the one that ends the sessions)."""
        rows = await session.execute(
            select(Session.browser_session_id, Session.client_id)
            .where(
                Session.kind == SessionKind.oauth.value,
                Session.browser_session_id.in_(list(browser_session_ids)),
            )
            .distinct()
        )
        return [(r[0], r[1]) for r in rows if r[0] is not None and r[1] is not None]

    async def _revoke(self, conditions: tuple[object, ...], reason: str) -> int:
        stmt = (
            update(Session)
            .where(
                Session.kind == SessionKind.oauth.value,
                Session.revoked_at.is_(None),
                *conditions,  # type: ignore[arg-type]
            )
            .values(revoked_at=utcnow(), revoked_reason=reason[:MAX_REASON_LENGTH])
        )
        async with self._db.single() as conn:
            result = await conn.execute(stmt)
        return int(result.rowcount)
