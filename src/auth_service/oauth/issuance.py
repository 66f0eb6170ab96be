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
    issued_token_type: str | None = None  # RFC 8693 section 2.2.1

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
        if self.issued_token_type is not None:
            body["issued_token_type"] = self.issued_token_type
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

    async def delegated(
        self,
        client: Client,
        *,
        subject: str,
        scope: str,
        audiences: tuple[str, ...],
        act: dict[str, Any],
        ttl: int,
    ) -> TokenResponse:
        """An access token of an exchange (RFC 8693): ``client`` acts for ``subject``
        towards ``audiences``; no refresh token (section 2.2.1: it is optional)."""
        access = await self.access.issue(
            client_id=client.client_id,
            scope=scope,
            resources=audiences,
            ttl=ttl,
            user=None,
            subject=subject,
            act=act,
        )
        return TokenResponse(
            access.token,
            access.expires_in,
            scope,
            issued_token_type="urn:ietf:params:oauth:token-type:access_token",  # noqa: S106
        )
