"""Sign-in as strict third-party clients do it. openid-client 6 (panva): discovery, the
authorization code with PKCE S256, state and nonce, the ID token validated (signature against
the JWKS, alg, iss, aud, exp, nonce) for an ES256 and an RS256 client, then UserInfo.
oauth4webapi 3: the same for a public client, with refresh and revocation. The browser step is
Chromium (Playwright) on our hosted sign-in and consent pages."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page

from tests.support.harness import Harness, HarnessError
from tests.support.live_server import LiveServer
from tests.support.oidc_harness import Clients, RelyingParty


def test_both_libraries_discover_the_provider(
    live_server: LiveServer, harness: Harness, clients: Clients
) -> None:
    client = clients.register("discovery")
    result = harness.run("oidc-discovery", base_url=live_server.url, **client.options())
    metadata = result["metadata"]
    assert metadata["issuer"] == live_server.url
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert {"ES256", "RS256"} <= set(metadata["id_token_signing_alg_values_supported"])
    assert "aal2" in metadata["acr_values_supported"]
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(
        metadata["grant_types_supported"]
    )
    for endpoint in ("introspection", "revocation", "end_session", "userinfo"):
        assert metadata[f"{endpoint}_endpoint"].startswith(live_server.url)
    keys = result["jwks"]["keys"]
    assert {k["alg"] for k in keys} >= {"ES256", "RS256"}
    assert all("d" not in k and k.get("kid") for k in keys)


def _check_sign_in(result: dict[str, Any], user: dict[str, Any], client_id: str) -> None:
    assert result["callback"]["iss"]  # RFC 9207, checked by the library too
    tokens = result["tokens"]
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["refresh_token"]
    claims = tokens["claims"]
    assert claims["sub"] == user["user"]["id"]
    assert claims["aud"] == client_id
    assert claims["acr"] == "aal1"
    assert claims["amr"] == ["pwd"]
    assert {"auth_time", "at_hash", "sid", "iat", "exp"} <= set(claims)
    assert result["userinfo"]["sub"] == user["user"]["id"]
    assert result["userinfo"]["email"] == user["email"]


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
async def test_openid_client_code_flow_with_pkce_and_nonce_validates_the_id_token(
    page: Page, live_server: LiveServer, rp: RelyingParty, clients: Clients, alg: str
) -> None:
    client = clients.register(f"openid-client {alg}", alg=alg)
    user = live_server.new_user()
    browser = rp.browser(page, user)
    result = await rp.run("oidc-code-flow", client, browser)
    assert [trip.pages for trip in browser.trips] == [["login", "consent"]]
    assert result["tokens"]["id_token_header"]["alg"] == alg
    assert result["tokens"]["claims"]["iss"] == live_server.url
    assert result["tokens"]["claims"]["nonce"] == result["sentNonce"]
    _check_sign_in(result, user, client.client_id)


async def test_the_id_token_signature_is_checked_by_the_library(
    page: Page, live_server: LiveServer, rp: RelyingParty, clients: Clients
) -> None:
    """The harness's checks are on: one bit of the ID token's signature flipped between our
    token endpoint and openid-client, and the sign-in fails."""
    client = clients.register("openid-client, tampered", alg="ES256")
    browser = rp.browser(page, live_server.new_user())
    with pytest.raises(HarnessError) as failure:
        await rp.run("oidc-code-flow", client, browser, tamper="id-token-signature")
    error = failure.value.error
    assert error["code"] == "OAUTH_INVALID_RESPONSE", error
    assert error["cause"]["message"] == "JWT signature verification failed", error
    assert [trip.pages for trip in browser.trips] == [["login", "consent"]]


async def test_openid_client_without_a_nonce_gets_an_id_token_without_one(
    page: Page, live_server: LiveServer, rp: RelyingParty, clients: Clients
) -> None:
    """openid-client requires the claim absent when it sent none: not null, not empty."""
    client = clients.register("openid-client, no nonce")
    user = live_server.new_user()
    result = await rp.run("oidc-code-flow", client, rp.browser(page, user), nonce="no")
    assert "nonce" not in result["tokens"]["claims"]
    _check_sign_in(result, user, client.client_id)


async def test_oauth4webapi_public_client_signs_in_refreshes_and_revokes(
    page: Page, live_server: LiveServer, rp: RelyingParty, clients: Clients
) -> None:
    client = clients.register("oauth4webapi public", client_type="public", alg="ES256")
    user = live_server.new_user()
    result = await rp.run("oidc-oauth4webapi", client, rp.browser(page, user))
    assert result["pages"] == ["login", "consent"]
    assert result["issuer"] == live_server.url
    assert result["claims"]["sub"] == user["user"]["id"]
    assert result["userinfo"]["email"] == user["email"]
    assert "name" not in result["userinfo"]  # no profile scope asked
    assert result["rotated"] is True
    refreshed = result["refreshedClaims"]
    assert refreshed["auth_time"] == result["claims"]["auth_time"]
    assert "nonce" not in refreshed
    assert result["afterRevocation"]["error"] == "invalid_grant"
