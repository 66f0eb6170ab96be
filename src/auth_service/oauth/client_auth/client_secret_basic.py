"""``client_secret_basic`` (RFC 6749 section 2.3.1): HTTP Basic with the client id and secret.

The id and secret are form-urlencoded *before* base64 (section 2.3.1, Appendix B), so a
strict client sends ``-`` as ``%2D`` and a space as ``+``: both are decoded after splitting
on the first colon (an encoded colon, ``%3A``, belongs to the value).
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from auth_service.oauth.clients import Client, ClientService
from auth_service.oauth.errors import InvalidClient
from auth_service.oauth.request import EndpointRequest

MAX_HEADER = 1024


def credentials(header: str | None) -> tuple[str, str] | None:
    """(client_id, secret) of a Basic Authorization header, or None when it is not Basic.
    Raises InvalidClient for a malformed one."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    if len(header) > MAX_HEADER:
        raise InvalidClient("the Authorization header is too long")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidClient("malformed Basic credentials") from None
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon:
        raise InvalidClient("malformed Basic credentials")
    return unquote_plus(raw_id), unquote_plus(raw_secret)


class ClientSecretBasic:
    name = "client_secret_basic"

    def presented(self, request: EndpointRequest) -> bool:
        header = request.authorization or ""
        return header[:6].lower() == "basic "

    async def authenticate(self, request: EndpointRequest, clients: ClientService) -> Client:
        found = credentials(request.authorization)
        if found is None:
            raise InvalidClient("Basic credentials are required")
        client_id, secret = found
        # The same answer for an unknown client and a wrong secret.
        client = await clients.authenticate(client_id, secret)
        if client is None:
            raise InvalidClient("client authentication failed")
        return client
