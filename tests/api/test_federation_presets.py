"""The Google and Microsoft Entra ID presets against their discovery documents, served on
127.0.0.1 with the providers' published fields (URLs moved to the local server), on SQLite
and PostgreSQL: the preset's defaults, and the sign-in starting at the document's
authorization endpoint. Entra's multi-tenant document names ``{tenantid}`` as its issuer:
accepted for an entra connector only. (The ID token's ``tid`` check is in
tests/unit/federation/test_id_token.py.) A served document, not a fake provider: nothing
past discovery is exercised here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from auth_service.audit.context import RequestContext
from auth_service.federation.connectors import ConnectorSpec, ConnectorType
from tests.support.api import Api
from tests.support.loopback import LoopbackServer, QuietHandler, reply
from tests.support.pages import submit

CTX = RequestContext(request_id="test")


def google(base: str) -> dict[str, object]:
    """https://accounts.google.com/.well-known/openid-configuration, its hosts moved."""
    return {
        "issuer": base,
        "authorization_endpoint": base + "/o/oauth2/v2/auth",
        "device_authorization_endpoint": base + "/device/code",
        "token_endpoint": base + "/token",
        "userinfo_endpoint": base + "/v1/userinfo",
        "revocation_endpoint": base + "/revoke",
        "jwks_uri": base + "/oauth2/v3/certs",
        "response_types_supported": ["code", "token", "id_token", "code token", "none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "sub"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
    }


def entra(base: str) -> dict[str, object]:
    """https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration."""
    return {
        "token_endpoint": base + "/common/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": base + "/common/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": base + "/{tenantid}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": base + "/oidc/userinfo",
        "authorization_endpoint": base + "/common/oauth2/v2.0/authorize",
        "end_session_endpoint": base + "/common/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "tid", "email"],
        "tenant_region_scope": None,
        "cloud_instance_name": "microsoftonline.com",
    }


class _Documents(QuietHandler):
    def do_GET(self) -> None:
        base = f"http://{self.headers['Host']}"
        documents = {
            "/.well-known/openid-configuration": google(base),
            "/common/v2.0/.well-known/openid-configuration": entra(base),
        }
        found = documents.get(self.path)
        reply(self, 200 if found else 404, json.dumps(found).encode(), "application/json")


@pytest.fixture
def documents() -> Iterator[str]:
    with LoopbackServer(_Documents) as server:
        yield server.url


async def _starts_at(api: Api, connector: str) -> tuple[str, dict[str, str]]:
    r = await submit(api.client, "/login", f"/login/federated/{connector}", {})
    assert r.status_code == 303, r.text[:400]
    target = urlsplit(r.headers["location"])
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    return f"{target.scheme}://{target.netloc}{target.path}", query


async def test_google_and_entra_presets_start_at_their_documents_endpoints(
    api: Api, documents: str
) -> None:
    store = api.services.federation.connectors
    made = await store.create(
        ConnectorSpec("google", "Google", ConnectorType.google, "g-client", issuer=documents),
        CTX,
    )
    assert made.scope == "openid email profile"  # the preset's default
    tenantless = documents + "/common/v2.0"
    await store.create(
        ConnectorSpec("entra", "Microsoft", ConnectorType.entra, "e-client", issuer=tenantless),
        CTX,
    )
    page = (await api.client.get("/login")).text
    assert "Continue with Google" in page
    assert "Continue with Microsoft" in page

    url, query = await _starts_at(api, "google")
    assert url == documents + "/o/oauth2/v2/auth"
    assert (query["client_id"], query["scope"]) == ("g-client", "openid email profile")
    assert query["code_challenge_method"] == "S256"
    assert query["nonce"]
    url, query = await _starts_at(api, "entra")
    assert url == documents + "/common/oauth2/v2.0/authorize"
    assert query["client_id"] == "e-client"

    # The same multi-tenant document for a generic provider: an issuer that is not itself.
    await store.create(
        ConnectorSpec("other", "Other", ConnectorType.oidc, "o-client", issuer=tenantless), CTX
    )
    r = await submit(api.client, "/login", "/login/federated/other", {})
    assert r.status_code == 422
    assert "Reference:" in r.text
