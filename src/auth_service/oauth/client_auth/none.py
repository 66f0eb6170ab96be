"""``none``: a public client identifies itself by ``client_id`` alone (RFC 6749 section 2.1,
OAuth 2.1 section 2.4). Only clients registered as public may use it; PKCE (codes) and
sender-bound refresh-token rotation protect what they get."""

from __future__ import annotations

from auth_service.oauth.clients import Client, ClientService
from auth_service.oauth.errors import InvalidClient
from auth_service.oauth.request import EndpointRequest


class NoClientAuthentication:
    name = "none"

    def presented(self, request: EndpointRequest) -> bool:
        # client_id alone: no Authorization header and no other credential in the body.
        params = request.params
        return (
            not request.authorization
            and params.get("client_id") is not None
            and params.get("client_secret") is None
            and params.get("client_assertion") is None
        )

    async def authenticate(self, request: EndpointRequest, clients: ClientService) -> Client:
        client = await clients.find(request.params.get("client_id"))
        if client is None or not client.public:
            raise InvalidClient("client authentication failed")
        return client
