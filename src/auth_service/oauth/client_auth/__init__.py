"""Client authentication at the token, introspection and revocation endpoints (RFC 6749
section 2.3), as a registry of methods.

Each method is an object with a ``name`` (its ``token_endpoint_auth_method`` value, RFC
7591), ``presented(request)`` (whether the request carries this method's credentials) and
``authenticate(request, clients)`` (the client, or InvalidClient). ``authenticate`` below
finds the one method a request uses (more than one is refused, section 2.3), runs it, and
requires it to be the method the client registered. A new method (``private_key_jwt``,
``tls_client_auth``) is a new module added to ``registry()``; discovery advertises the
registry.
"""

from __future__ import annotations

from typing import Protocol

from auth_service.oauth.client_auth import client_secret_basic, client_secret_post, none
from auth_service.oauth.clients import Client, ClientService
from auth_service.oauth.errors import InvalidClient, InvalidRequest
from auth_service.oauth.request import EndpointRequest


class ClientAuthMethod(Protocol):
    name: str

    def presented(self, request: EndpointRequest) -> bool: ...

    async def authenticate(self, request: EndpointRequest, clients: ClientService) -> Client: ...


def registry(*extra: ClientAuthMethod) -> dict[str, ClientAuthMethod]:
    """The methods needing nothing but the client registry, and ``extra`` ones built with
    what they need (``private_key_jwt``: keys and a replay store)."""
    methods: tuple[ClientAuthMethod, ...] = (
        client_secret_basic.ClientSecretBasic(),
        client_secret_post.ClientSecretPost(),
        none.NoClientAuthentication(),
        *extra,
    )
    return {m.name: m for m in methods}


async def authenticate(
    request: EndpointRequest, methods: dict[str, ClientAuthMethod], clients: ClientService
) -> Client:
    """The authenticated client of ``request``. Raises InvalidClient or InvalidRequest."""
    used = [m for m in methods.values() if m.presented(request)]
    if not used:
        raise InvalidClient("client authentication is required")
    if len(used) > 1:
        raise InvalidRequest("use exactly one client authentication method")
    method = used[0]
    client = await method.authenticate(request, clients)
    if client.token_endpoint_auth_method != method.name:
        raise InvalidClient(f"this client authenticates with {client.token_endpoint_auth_method}")
    # A client_id in the body must name the authenticated client (RFC 6749 section 3.2.1).
    body_id = request.params.get("client_id")
    if body_id is not None and body_id != client.client_id:
        raise InvalidClient("client_id does not match the authenticated client")
    return client


def challenge(realm: str) -> str:
    """The WWW-Authenticate value of a 401 invalid_client (RFC 6749 section 5.2)."""
    return f'Basic realm="{realm}"'
