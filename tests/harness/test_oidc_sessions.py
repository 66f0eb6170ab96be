"""The browser session as openid-client 6 meets it: prompt=none with and without a session,
max_age forcing a new sign-in (auth_time checked by the library), and RP-initiated logout with
and without an id_token_hint."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from tests.support.live_server import LiveServer
from tests.support.oidc_harness import Clients, RelyingParty


async def test_prompt_none_without_then_with_a_session(
    page: Page, live_server: LiveServer, rp: RelyingParty, clients: Clients
) -> None:
    client = clients.register("openid-client prompt=none")
    result = await rp.run("oidc-prompt-none", client, rp.browser(page, live_server.new_user()))
    # The error came back to the client, state and iss checked by openid-client before it.
    assert result["loginRequired"]["name"] == "AuthorizationResponseError"
    assert result["loginRequired"]["error"] == "login_required"
    assert result["pages"] == [[], ["login", "consent"], []]
    first, second = result["first"], result["second"]
    assert second["auth_time"] == first["auth_time"]
    assert second["sid"] == first["sid"]
    assert second["nonce"] != first["nonce"]


async def test_max_age_repeats_an_old_sign_in_and_keeps_a_young_one(
    page: Page, live_server: LiveServer, rp: RelyingParty, clients: Clients
) -> None:
    client = clients.register("openid-client max_age")
    result = await rp.run("oidc-max-age", client, rp.browser(page, live_server.new_user()))
    assert result["pages"] == [["login"], []]
    first, again, kept = result["authTimes"]
    assert again > first
    assert kept == again


@pytest.mark.parametrize("hint", ["yes", "no"])
async def test_rp_initiated_logout(
    page: Page, live_server: LiveServer, rp: RelyingParty, clients: Clients, hint: str
) -> None:
    client = clients.register(f"openid-client logout, hint {hint}")
    browser = rp.browser(page, live_server.new_user())
    result = await rp.run("oidc-logout", client, browser, hint=hint)
    assert result["hasRefreshToken"] is False
    assert result["before"]["active"] is True
    # With our own ID token as the hint: no question asked. Without: the user confirms.
    assert result["trip"]["pages"] == ([] if hint == "yes" else ["logout"])
    landed = browser.trips[1]
    assert landed.url.startswith(clients.endpoint.post_logout_redirect_uri + "?")
    assert landed.query == {"state": result["sentState"]}
    # The session's grant (no refresh token) ended with it; a silent sign-in finds no one.
    assert result["after"] == {"active": False}
    assert result["silent"]["error"] == "login_required"
