"""Token introspection (RFC 7662).

Only an authenticated client may ask (section 2.1), and it learns only about its own
tokens: anything it does not own, we did not issue (however long), or that is expired,
revoked or whose grant ended is ``{"active": false}`` and nothing more (section 2.2,
section 4).
"""

from __future__ import annotations

from typing import Any

from auth_service.oauth import jose
from auth_service.oauth.clients import Client
from auth_service.oauth.request import EndpointRequest
from auth_service.oauth.rfc7009 import RevokedAccessTokens
from auth_service.oauth.rfc9068 import AccessTokens
from auth_service.oauth.subjects import Subjects
from auth_service.sessions.grants import GrantSessions

INACTIVE: dict[str, Any] = {"active": False}


class Introspection:
    def __init__(
        self,
        access: AccessTokens,
        revoked: RevokedAccessTokens,
        grants: GrantSessions,
        leeway: int,
        subjects: Subjects,
    ) -> None:
        self._access = access
        self._revoked = revoked
        self._grants = grants
        self.leeway = leeway
        self.subjects = subjects

    async def introspect(self, request: EndpointRequest, client: Client) -> dict[str, Any] | None:
        """Section 2.2. Raises InvalidRequest when ``token`` is missing. A token longer than
        any we issue is no token of ours: inactive, like any other (not a 400)."""
        token = request.params.require("token", max_length=None)
        if len(token) > jose.MAX_TOKEN_LENGTH:
            return None
        hint = request.params.get("token_type_hint")
        if hint == "refresh_token" or token.count(".") != 2:
            return await self._refresh(token, client) or await self._access_token(token, client)
        return await self._access_token(token, client) or await self._refresh(token, client)

    async def _access_token(self, token: str, client: Client) -> dict[str, Any] | None:
        try:
            claims = await self._access.verify(token, 0)
        except jose.JoseError:
            return None
        if claims.client_id != client.client_id or await self._revoked.revoked(claims.jti):
            return None
        grant = claims.grant_id
        if grant is not None and not await self._grants.grant_live(grant, client.client_id):
            return None
        body: dict[str, Any] = {
            "active": True,
            "token_type": "Bearer",
            "scope": " ".join(claims.scopes),
            "client_id": claims.client_id,
            "sub": claims.subject,
            "aud": claims.audience,
            "iss": self._access.issuer,
            "exp": claims.expires_at,
            "iat": claims.issued_at,
            "jti": claims.jti,
        }
        for name in ("auth_time", "acr", "amr"):
            if name in claims.claims:
                body[name] = claims.claims[name]
        if "cnf" in claims.claims:  # RFC 9449 section 6.2
            body["cnf"] = claims.claims["cnf"]
            body["token_type"] = "DPoP"  # noqa: S105 - a token type
        return body

    async def _refresh(self, token: str, client: Client) -> dict[str, Any] | None:
        info = await self._grants.refresh_token_info(token, client.client_id)
        if info is None:
            return None
        return {
            "active": True,
            "token_type": "refresh_token",
            "scope": info.scope,
            "client_id": client.client_id,
            "sub": self.subjects.of(client, info.user_id),
            "iss": self._access.issuer,
            "exp": int(info.expires_at.timestamp()),
            "iat": int(info.created_at.timestamp()),
        }

    async def answer(self, request: EndpointRequest, client: Client) -> dict[str, Any]:
        return await self.introspect(request, client) or dict(INACTIVE)
