"""``client_secret_post`` (RFC 6749 section 2.3.1): the id and secret in the form body."""

from __future__ import annotations

from auth_service.oauth.clients import Client, ClientService
from auth_service.oauth.errors import InvalidClient
from auth_service.oauth.request import EndpointRequest


class ClientSecretPost:
    name = "client_secret_post"

    def presented(self, request: EndpointRequest) -> bool:
        return request.params.get("client_secret") is not None

    async def authenticate(self, request: EndpointRequest, clients: ClientService) -> Client:
        secret = request.params.get("client_secret") or ""
        client = await clients.authenticate(request.params.get("client_id"), secret)
        if client is None:
            raise InvalidClient("client authentication failed")
        return client
