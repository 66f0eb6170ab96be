"""Token revocation (RFC 7009).

The client authenticates; it may revoke only its own tokens, and the answer is 200 whether
or not the token was valid, known or its own (section 2.2: nothing to learn from the
answer). ``token_type_hint`` only says which kind to look up first (section 2.1). Revoking
a refresh token ends its grant, and with it every access token of the grant; an access
token is revoked alone, by ``jti``, until it expires.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from auth_service.audit import events
from auth_service.audit.service import AuditService
from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.oauth import jose
from auth_service.oauth.clients import Client
from auth_service.oauth.models import RevokedAccessToken
from auth_service.oauth.request import EndpointRequest
from auth_service.oauth.rfc9068 import AccessClaims, AccessTokens
from auth_service.sessions.grants import GrantSessions
from auth_service.sessions.revocation import SessionRevoker

HINTS = ("access_token", "refresh_token")


class RevokedAccessTokens:
    """The ``jti`` of access tokens revoked before they expire."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, claims: AccessClaims, tenant_id: object) -> None:
        now = utcnow()
        async with self._db.single() as conn:
            # Expired entries go with each addition: the table holds live tokens only.
            await conn.execute(
                delete(RevokedAccessToken).where(RevokedAccessToken.expires_at < now)
            )
        try:
            async with self._db.single() as conn:
                await conn.execute(
                    insert(RevokedAccessToken).values(
                        jti=claims.jti,
                        tenant_id=tenant_id,
                        client_id=claims.client_id,
                        expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
                    )
                )
        except IntegrityError:
            pass  # revoked already: revocation is idempotent

    async def revoked(self, jti: str) -> bool:
        async with self._db.single() as conn:
            found = await conn.scalar(
                select(RevokedAccessToken.jti).where(RevokedAccessToken.jti == jti)
            )
        return found is not None


class Revocation:
    def __init__(
        self,
        access: AccessTokens,
        revoked: RevokedAccessTokens,
        grants: GrantSessions,
        revoker: SessionRevoker,
        audit: AuditService,
        leeway: int,
    ) -> None:
        self._access = access
        self._revoked = revoked
        self._grants = grants
        self._revoker = revoker
        self._audit = audit
        self.leeway = leeway

    async def revoke(self, request: EndpointRequest, client: Client) -> None:
        """Section 2.1. Raises InvalidRequest when ``token`` is missing. A token longer than
        any we issue is revoked as any unknown one is: nothing done, 200 (section 2.2)."""
        token = request.params.require("token", max_length=None)
        if len(token) > jose.MAX_TOKEN_LENGTH:
            return
        hint = request.params.get("token_type_hint")
        order = ("refresh_token", "access_token") if hint == "refresh_token" else HINTS
        for kind in order:
            revoked = await (
                self._revoke_refresh(token, client)
                if kind == "refresh_token"
                else self._revoke_access(token, client)
            )
            if revoked:
                await self._audit.record(
                    events.OAUTH_TOKEN_REVOKED,
                    request.context,
                    details={"client_id": client.client_id, "kind": kind},
                )
                return

    async def _revoke_access(self, token: str, client: Client) -> bool:
        if token.count(".") != 2:
            return False
        try:
            claims = await self._access.verify(token, self.leeway)
        except jose.JoseError:
            return False
        if claims.client_id != client.client_id:
            return False
        await self._revoked.add(claims, client.tenant_id)
        return True

    async def _revoke_refresh(self, token: str, client: Client) -> bool:
        grant_id = await self._grants.grant_of_refresh_token(token, client.client_id)
        if grant_id is None:
            return False
        await self._revoker.revoke(grant_id, reason="revoked")
        return True
