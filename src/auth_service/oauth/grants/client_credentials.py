"""The client credentials grant (RFC 6749 section 4.4): a confidential client's own token.

Only scopes that need no user (the configured API scopes the client is allowed; never
``openid``, ``profile``, ``email``, ``offline_access``); no refresh token (section 4.4.3);
``sub`` is the client (RFC 9068 section 2.2).
"""

from __future__ import annotations

from auth_service.oauth.authorization import check_resources
from auth_service.oauth.clients import Client
from auth_service.oauth.errors import InvalidScope, UnauthorizedClient
from auth_service.oauth.grants import GrantContext
from auth_service.oauth.issuance import TokenResponse
from auth_service.oauth.request import EndpointRequest
from auth_service.oauth.scopes import USER_SCOPES, format_scope, parse_scope


class ClientCredentialsGrant:
    name = "client_credentials"

    def __init__(self, context: GrantContext) -> None:
        self._ctx = context

    async def exchange(self, request: EndpointRequest, client: Client) -> TokenResponse:
        if client.public:
            raise UnauthorizedClient("a public client has no credentials of its own")
        allowed = [s for s in client.scopes if s not in USER_SCOPES]
        asked = parse_scope(request.params.get("scope"))
        refused = [s for s in asked if s not in allowed]
        if refused:
            raise InvalidScope(f"scope {refused[0]!r} is not available to this client")
        resources = check_resources(request.params.all("resource"), client)
        return await self._ctx.issuer.for_client(
            client,
            scope=format_scope(asked or allowed),
            resources=resources,
            lifetimes=self._ctx.lifetimes(),
        )
