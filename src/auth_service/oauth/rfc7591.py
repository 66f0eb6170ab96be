"""Dynamic client registration (RFC 7591), off unless ``oauth.dynamic_registration``.

Protected by an initial access token (section 3: the bearer token the operator configured,
compared in constant time) — open registration is not offered. Registered clients are
never first-party (they always ask for consent). Client read/update/delete over RFC 7592 is
not offered: operators manage clients with the CLI and the admin API.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from auth_service.audit.context import RequestContext
from auth_service.oauth.client_metadata import ClientSpec, ClientType
from auth_service.oauth.clients import Client, ClientService
from auth_service.oauth.errors import (
    InvalidClientMetadata,
    InvalidClientMetadataError,
    InvalidToken,
    OAuthError,
)
from auth_service.security.random import token_digest

_LISTS = ("redirect_uris", "post_logout_redirect_uris", "grant_types", "resources")
_STRINGS = (
    "client_name",
    "scope",
    "token_endpoint_auth_method",
    "id_token_signed_response_alg",
    "subject_type",
    "sector_identifier_uri",
    "backchannel_logout_uri",
)


class RegistrationDisabled(OAuthError):
    error = "invalid_request"
    status = 404


def _strings(body: dict[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadataError(f"{name} must be an array of strings")
    return tuple(value)


def spec_of(body: dict[str, Any]) -> ClientSpec:
    """A client spec from RFC 7591 section 2 metadata (unknown members are ignored)."""
    for name in _STRINGS:
        if name in body and not isinstance(body[name], str):
            raise InvalidClientMetadataError(f"{name} must be a string")
    response_types = body.get("response_types", ["code"])
    if response_types != ["code"]:
        raise InvalidClientMetadataError('response_types must be ["code"]')
    if "jwks" in body and not isinstance(body["jwks"], dict):
        raise InvalidClientMetadataError("jwks must be a JWK Set object")
    if "jwks_uri" in body and not isinstance(body["jwks_uri"], str):
        raise InvalidClientMetadataError("jwks_uri must be a string")
    require_par = body.get("require_pushed_authorization_requests", False)
    if not isinstance(require_par, bool):
        raise InvalidClientMetadataError("require_pushed_authorization_requests must be a boolean")
    session_required = body.get("backchannel_logout_session_required", False)
    if not isinstance(session_required, bool):
        raise InvalidClientMetadataError("backchannel_logout_session_required must be a boolean")
    method = body.get("token_endpoint_auth_method") or "client_secret_basic"
    lists = {name: _strings(body, name) for name in _LISTS}
    return ClientSpec(
        name=body.get("client_name") or "unnamed client",
        client_type=ClientType.public if method == "none" else ClientType.confidential,
        redirect_uris=lists["redirect_uris"],
        post_logout_redirect_uris=lists["post_logout_redirect_uris"],
        grant_types=lists["grant_types"] or ("authorization_code",),
        scope=body.get("scope") or "openid",
        resources=lists["resources"],
        first_party=False,
        token_endpoint_auth_method=method,
        id_token_signed_response_alg=body.get("id_token_signed_response_alg") or "RS256",
        require_pushed_authorization_requests=require_par,
        jwks=body.get("jwks"),
        jwks_uri=body.get("jwks_uri"),
        subject_type=body.get("subject_type") or "public",
        sector_identifier_uri=body.get("sector_identifier_uri"),
        backchannel_logout_uri=body.get("backchannel_logout_uri"),
        backchannel_logout_session_required=session_required,
    )


def client_metadata(client: Client) -> dict[str, Any]:
    """The registered metadata as RFC 7591 names it (client information response, 3.2.1)."""
    return {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created_at.timestamp()),
        "client_name": client.name,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": ["code"],
        "scope": " ".join(client.scopes),
        "resources": list(client.resources),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
        "subject_type": client.subject_type,
        **({"jwks": client.jwks} if client.jwks is not None else {}),
        **({"jwks_uri": client.jwks_uri} if client.jwks_uri is not None else {}),
        **(
            {
                "backchannel_logout_uri": client.backchannel_logout_uri,
                "backchannel_logout_session_required": client.backchannel_logout_session_required,
            }
            if client.backchannel_logout_uri is not None
            else {}
        ),
    }


class Registration:
    def __init__(self, clients: ClientService) -> None:
        self._clients = clients

    async def register(
        self,
        body: Any,
        authorization: str | None,
        *,
        enabled: bool,
        initial_token: str | None,
        ctx: RequestContext,
    ) -> dict[str, Any]:
        """Section 3.1. Raises RegistrationDisabled, InvalidToken or an RFC 7591 error."""
        if not enabled or initial_token is None:
            raise RegistrationDisabled("dynamic client registration is not enabled")
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token_digest(presented.strip()), token_digest(initial_token)
        ):
            raise InvalidToken("a valid initial access token is required")
        if not isinstance(body, dict):
            raise InvalidClientMetadataError("the body must be a JSON object")
        try:
            client, secret = await self._clients.create(
                spec_of(body), ctx, dynamically_registered=True
            )
        except InvalidClientMetadata as exc:
            raise exc.as_oauth() from None
        answer = client_metadata(client)
        if secret is not None:
            answer["client_secret"] = secret
            answer["client_secret_expires_at"] = 0
        answer["client_id_issued_at"] = answer.get("client_id_issued_at") or int(time.time())
        return answer
