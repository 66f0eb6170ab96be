"""Authorization server metadata (RFC 8414) and OpenID Provider metadata (OpenID Connect
Discovery 1.0 section 3): one document, served at both well-known paths.

Everything listed comes from what is registered or configured (the grant and
client-authentication registries, the signing algorithms, the scopes), so the document
cannot promise what the server does not do. Per tenant, the issuer gets a path
(``/t/<slug>``) and every endpoint below it (ADR 0700); the default tenant's URLs never move.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from auth_service.oauth import rfc7636
from auth_service.oauth.authorization import PROMPTS, RESPONSE_MODES

# Paths below the issuer (ADR 0700); the JWKS is the service's.
AUTHORIZE = "/oauth2/authorize"
AUTHORIZE_CONTINUE = "/oauth2/authorize/continue"
TOKEN = "/oauth2/token"  # noqa: S105 - a path
INTROSPECT = "/oauth2/introspect"
REVOKE = "/oauth2/revoke"
USERINFO = "/oauth2/userinfo"
END_SESSION = "/oauth2/logout"
REGISTER = "/oauth2/register"
JWKS = "/.well-known/jwks.json"
OPENID_CONFIGURATION = "/.well-known/openid-configuration"
AUTHORIZATION_SERVER = "/.well-known/oauth-authorization-server"


def tenant_issuer(base: str, slug: str | None) -> str:
    """The issuer of a tenant: the public URL for the default tenant, ``/t/<slug>`` below it
    for any other (ADR 0700)."""
    return base if slug is None else f"{base}/t/{slug}"


@dataclass(frozen=True)
class Capabilities:
    grant_types: Iterable[str]
    auth_methods: Iterable[str]
    introspection_auth_methods: Iterable[str]
    id_token_algs: Iterable[str]
    scopes: Iterable[str]
    claims: Iterable[str]
    ui_locales: Iterable[str]
    acr_values: Iterable[str]
    registration: bool


def metadata(issuer: str, can: Capabilities) -> dict[str, Any]:
    methods = list(can.auth_methods)
    doc: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": issuer + AUTHORIZE,
        "token_endpoint": issuer + TOKEN,
        "userinfo_endpoint": issuer + USERINFO,
        "jwks_uri": issuer + JWKS,
        "introspection_endpoint": issuer + INTROSPECT,
        "revocation_endpoint": issuer + REVOKE,
        "end_session_endpoint": issuer + END_SESSION,
        "scopes_supported": list(can.scopes),
        "response_types_supported": ["code"],
        "response_modes_supported": list(RESPONSE_MODES),
        "grant_types_supported": list(can.grant_types),
        "subject_types_supported": ["public", "pairwise"],  # OIDC Core 8, per client
        "id_token_signing_alg_values_supported": list(can.id_token_algs),
        "token_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_methods_supported": list(can.introspection_auth_methods),
        "revocation_endpoint_auth_methods_supported": methods,
        "code_challenge_methods_supported": list(rfc7636.METHODS_SUPPORTED),
        "claims_supported": list(can.claims),
        "claim_types_supported": ["normal"],
        "prompt_values_supported": sorted(PROMPTS),
        "acr_values_supported": list(can.acr_values),
        "ui_locales_supported": list(can.ui_locales),
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "claims_parameter_supported": False,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": False,
    }
    if can.registration:
        doc["registration_endpoint"] = issuer + REGISTER
    return doc
