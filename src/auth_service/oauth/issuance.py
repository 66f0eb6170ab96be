"""The token response (RFC 6749 section 5.1), shared by every grant type."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from auth_service.oauth.clients import Client
from auth_service.oauth.id_token import IdTokens
from auth_service.oauth.rfc9068 import AccessTokens, UserFacts
from auth_service.oauth.scopes import OPENID
from auth_service.oauth.subjects import Subjects


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    id_token: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.id_token is not None:
            body["id_token"] = self.id_token
        return body


@dataclass(frozen=True)
class Lifetimes:
    access: int
    id_token: int


class TokenIssuer:
    def __init__(self, access: AccessTokens, id_tokens: IdTokens, subjects: Subjects) -> None:
        self.access = access
        self.id_tokens = id_tokens
        self.subjects = subjects

    async def for_user(
        self,
        client: Client,
        *,
        scope: str,
        resources: tuple[str, ...],
        user: UserFacts,
        lifetimes: Lifetimes,
        refresh_token: str | None,
        nonce: str | None,
        browser_session_id: uuid.UUID | None,
    ) -> TokenResponse:
        """Tokens of a grant a user made: an access token, the refresh token when the grant
        has one, and an ID token when ``openid`` was granted. Both say the ``sub`` this
        client sees (public or pairwise, OIDC Core 8)."""
        user = replace(user, subject=self.subjects.of(client, user.user_id))
        access = await self.access.issue(
            client_id=client.client_id,
            scope=scope,
            resources=resources,
            ttl=lifetimes.access,
            user=user,
        )
        id_token = None
        if OPENID in scope.split():
            id_token = await self.id_tokens.issue(
                client_id=client.client_id,
                algorithm=client.id_token_signed_response_alg,
                user=user,
                ttl=lifetimes.id_token,
                nonce=nonce,
                browser_session_id=browser_session_id,
                access_token=access.token,
            )
        return TokenResponse(access.token, access.expires_in, scope, refresh_token, id_token)

    async def for_client(
        self, client: Client, *, scope: str, resources: tuple[str, ...], lifetimes: Lifetimes
    ) -> TokenResponse:
        """An access token of the client itself (client_credentials): no user, no refresh."""
        access = await self.access.issue(
            client_id=client.client_id,
            scope=scope,
            resources=resources,
            ttl=lifetimes.access,
            user=None,
        )
        return TokenResponse(access.token, access.expires_in, scope)
