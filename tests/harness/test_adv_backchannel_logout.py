"""OpenID Connect Back-Channel Logout 1.0 with a relying party in the Node harness: its
back-channel endpoint validates each logout token with panva's ``jose`` (section 2.6), and
openid-client signs in twice; one session ends by RP-initiated logout, the other by the
user revoking it over our API. Each ended session reaches the endpoint as one valid token
with that session's ``sid`` and ``sub``."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.async_api import Page

from tests.support.live_server import LiveServer
from tests.support.oidc_harness import Clients, RelyingParty


async def test_logout_tokens_reach_a_relying_party_that_verifies_them_with_jose(
    page: Page, live_server: LiveServer, rp: RelyingParty, clients: Clients
) -> None:
    user = live_server.new_user()
    browser = rp.browser(page, user)
    registered: list[str] = []

    async def register(ask: dict[str, Any]) -> dict[str, Any]:
        client = clients.register(
            "openid-client back-channel logout",
            alg=ask["alg"],
            scope="openid",
            grant_types=("authorization_code",),
            first_party=True,
            backchannel_logout_uri=ask["backchannelLogoutUri"],
            backchannel_logout_session_required=True,
        )
        registered.append(client.client_id)
        return {"clientId": client.client_id, "clientSecret": client.client_secret}

    async def revoke(ask: dict[str, Any]) -> None:
        bearer = {"Authorization": f"Bearer {user['access_token']}"}
        async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
            r = await http.delete(f"/v1/sessions/{ask['sid']}", headers=bearer)
        assert r.status_code == 204, r.text

    browser.asks.update(client=register, revoke=revoke)
    endpoint = clients.endpoint
    result = await rp.harness.converse(
        "adv-backchannel-logout",
        base_url=live_server.url,
        answer=browser,
        redirect_uri=endpoint.redirect_uri,
        post_logout_redirect_uri=endpoint.post_logout_redirect_uri,
        alg="ES256",
    )
    assert result["supported"] == {
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }
    assert result["clientId"] == registered[0]
    first, second = result["sessions"]
    assert first["sid"] != second["sid"]
    assert first["sub"] == second["sub"] == user["user"]["id"]
    # Every token the endpoint received verified; one per ended session, in order.
    assert [r["ok"] for r in result["received"]] == [True, True], result["received"]
    got = [(r["claims"]["sid"], r["claims"]["sub"]) for r in result["received"]]
    assert got == [(first["sid"], first["sub"]), (second["sid"], second["sub"])]
    for received in result["received"]:
        assert received["header"]["typ"] == "logout+jwt"
        assert received["header"]["alg"] == "ES256"
        assert received["claims"]["aud"] == registered[0]
        assert "nonce" not in received["claims"]
    # The logout ended the first session's sign-in: the second needed the password again.
    assert [trip.pages for trip in browser.trips] == [["login"], [], ["login"]]
