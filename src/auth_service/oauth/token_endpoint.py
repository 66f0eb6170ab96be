"""The token endpoint (RFC 6749 section 3.2): authenticate the client, dispatch the grant.

And the shared front of every client-authenticated endpoint (introspection, revocation):
``EndpointRequest`` in, the authenticated client out.
"""

from __future__ import annotations

from auth_service.oauth import client_auth
from auth_service.oauth.client_auth import ClientAuthMethod
from auth_service.oauth.clients import Client, ClientService
from auth_service.oauth.errors import UnauthorizedClient, UnsupportedGrantType
from auth_service.oauth.grants import GrantType
from auth_service.oauth.issuance import TokenResponse
from auth_service.oauth.request import EndpointRequest


class TokenEndpoint:
    def __init__(
        self,
        clients: ClientService,
        methods: dict[str, ClientAuthMethod],
        grants: dict[str, GrantType],
    ) -> None:
        self.clients = clients
        self.methods = methods
        self.grants = grants

    async def client(self, request: EndpointRequest) -> Client:
        """The authenticated client (InvalidClient, InvalidRequest)."""
        return await client_auth.authenticate(request, self.methods, self.clients)

    async def token(self, request: EndpointRequest) -> TokenResponse:
        """Section 4.1.3, 4.4.2, 6: the client first, then its grant."""
        grant_type = request.params.require("grant_type")
        client = await self.client(request)
        grant = self.grants.get(grant_type)
        if grant is None:
            raise UnsupportedGrantType(f"grant_type {grant_type[:40]!r} is not supported")
        if grant_type not in client.grant_types:
            raise UnauthorizedClient(f"this client may not use {grant.name}")
        return await grant.exchange(request, client)
