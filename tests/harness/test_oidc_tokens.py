"""Tokens after the sign-in, as openid-client 6 handles them: refresh with rotation and reuse
detection, introspection and revocation, and the client credentials grant."""

from __future__ import annotations

from playwright.async_api import Page

from tests.support.harness import Harness
from tests.support.live_server import LiveServer
from tests.support.oidc_harness import API_SCOPE, Clients, RelyingParty


async def test_refresh_rotates_and_a_replayed_refresh_token_revokes_the_grant(
    page: Page, live_server: LiveServer, rp: RelyingParty, clients: Clients
) -> None:
    client = clients.register("openid-client refresh", alg="ES256")
    result = await rp.run("oidc-refresh", client, rp.browser(page, live_server.new_user()))
    first, rotated = result["first"], result["rotated"]
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["access_token"] != first["access_token"]
    # OIDC Core 12.2: the refreshed ID token is the same sign-in, without a nonce.
    assert rotated["claims"]["sub"] == first["claims"]["sub"]
    assert rotated["claims"]["auth_time"] == first["claims"]["auth_time"]
    assert "nonce" in first["claims"]
    assert "nonce" not in rotated["claims"]
    assert result["beforeReuse"]["active"] is True
    assert result["replayed"]["error"] == "invalid_grant"
    assert result["afterReuse"]["error"] == "invalid_grant"  # the whole family is revoked
    assert result["accessAfterReuse"] == {"active": False}
    assert result["refreshAfterReuse"] == {"active": False}
    assert result["userinfoAfterReuse"]["status"] == 401
    assert result["userinfoAfterReuse"]["error"] == "invalid_token"


async def test_introspection_and_revocation_of_access_and_refresh_tokens(
    page: Page, live_server: LiveServer, rp: RelyingParty, clients: Clients
) -> None:
    client = clients.register("openid-client introspection")
    result = await rp.run(
        "oidc-introspect-revoke", client, rp.browser(page, live_server.new_user())
    )
    access = result["active"]["access"]
    assert access["active"] is True
    assert access["client_id"] == client.client_id
    assert access["sub"] == result["sub"]
    assert set(access["scope"].split()) == {"openid", "profile", "email", "offline_access"}
    assert access["token_type"] == "Bearer"
    assert result["active"]["refresh"]["active"] is True
    assert result["accessRevoked"]["access"] == {"active": False}
    assert result["accessRevoked"]["userinfo"]["error"] == "invalid_token"
    assert result["accessRevoked"]["refresh"]["active"] is True  # the grant lives on
    assert result["refreshed"] is True
    assert result["refreshRevoked"]["access"] == {"active": False}
    assert result["refreshRevoked"]["refresh"] == {"active": False}
    assert result["refreshRevoked"]["refreshGrant"]["error"] == "invalid_grant"


def test_client_credentials(live_server: LiveServer, harness: Harness, clients: Clients) -> None:
    client = clients.register(
        "openid-client machine",
        grant_types=("client_credentials",),
        scope=API_SCOPE,
        redirect_uris=(),
        post_logout_redirect_uris=(),
    )
    result = harness.run(
        "oidc-client-credentials", base_url=live_server.url, scope=API_SCOPE, **client.options()
    )
    assert result["response"]["scope"] == API_SCOPE
    assert result["response"]["has_refresh_token"] is False
    assert result["response"]["has_id_token"] is False
    assert result["header"]["typ"] == "at+jwt"
    assert result["claims"]["sub"] == client.client_id
    assert result["claims"]["client_id"] == client.client_id
    assert result["introspection"]["active"] is True
    assert result["introspection"]["sub"] == client.client_id
    assert result["userScope"]["error"] == "invalid_scope"
