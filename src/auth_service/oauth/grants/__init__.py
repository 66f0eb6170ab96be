"""Grant types of the token endpoint (RFC 6749 section 4), as a registry.

Each grant is an object with a ``name`` (the ``grant_type`` value) and
``exchange(request, client)`` returning the token response, or raising an OAuthError.
The token endpoint authenticates the client, checks the client may use the grant type and
calls the grant; discovery advertises the registry's names. A new grant (device code,
token exchange) is a new module and one more entry in ``GrantContext.registry``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from auth_service.audit.service import AuditService
from auth_service.config.settings import Settings
from auth_service.oauth.clients import Client
from auth_service.oauth.codes import CodeStore
from auth_service.oauth.issuance import Lifetimes, TokenIssuer, TokenResponse
from auth_service.oauth.request import EndpointRequest
from auth_service.oauth.rfc7009 import RevokedAccessTokens
from auth_service.oauth.rfc8628 import DeviceAuthorizations
from auth_service.sessions.grants import GrantSessions
from auth_service.sessions.revocation import SessionRevoker
from auth_service.sessions.service import SessionService


class GrantType(Protocol):
    name: str

    async def exchange(self, request: EndpointRequest, client: Client) -> TokenResponse: ...


@dataclass(frozen=True)
class GrantContext:
    """What grant types share: the stores they use and the settings of the moment."""

    settings: Callable[[], Settings]
    issuer: TokenIssuer
    codes: CodeStore
    grants: GrantSessions
    sessions: SessionService
    revoker: SessionRevoker
    audit: AuditService
    devices: DeviceAuthorizations
    # Access tokens revoked before their expiry (token exchange checks its subject token).
    revoked: RevokedAccessTokens | None = None

    def lifetimes(self) -> Lifetimes:
        oauth = self.settings().oauth
        return Lifetimes(oauth.access_token_ttl_seconds, oauth.id_token_ttl_seconds)

    def registry(self) -> dict[str, GrantType]:
        from auth_service.oauth.grants import (
            authorization_code,
            client_credentials,
            device_code,
            refresh_token,
            token_exchange,
        )

        grants: tuple[GrantType, ...] = (
            authorization_code.AuthorizationCodeGrant(self),
            refresh_token.RefreshTokenGrant(self),
            client_credentials.ClientCredentialsGrant(self),
            device_code.DeviceCodeGrant(self),
            token_exchange.TokenExchangeGrant(self),
        )
        return {g.name: g for g in grants}
