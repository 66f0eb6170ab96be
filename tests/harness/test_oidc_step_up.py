"""acr step-up (issue #15) as openid-client 6 drives it: a user signed in with a password
(aal1) sets up an authenticator app; the client asks acr_values for the aal2 value the provider
advertises; the browser is asked for the code only (pyotp computes it) and the ID token says
acr aal2, with both methods and ``mfa`` in amr (RFC 8176)."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

from tests.support.live_server import LiveServer
from tests.support.oidc_harness import Clients, RelyingParty, enrol_totp


async def test_acr_values_aal2_steps_up_with_the_authenticator_app(
    page: Page, live_server: LiveServer, rp: RelyingParty, clients: Clients
) -> None:
    client = clients.register("openid-client step-up", alg="ES256")
    user = live_server.new_user()
    browser = rp.browser(page, user)

    async def enrol(_ask: dict[str, Any]) -> None:
        browser.totp_secret = await enrol_totp(live_server, user)

    browser.asks["enrol-totp"] = enrol
    result = await rp.run("oidc-acr-step-up", client, browser, acr="aal2")
    # A sign-in, then the second step alone (no password again), then nothing to ask.
    assert result["pages"] == [["login", "consent"], ["mfa"], []]
    signed_in, stepped, kept = result["claims"]
    assert signed_in["acr"] == "aal1"
    assert signed_in["amr"] == ["pwd"]
    assert stepped["satisfied"] is True
    assert stepped["acr"] == "aal2"
    assert stepped["amr"] == ["pwd", "otp", "mfa"]
    # The step-up is a sign-in: a new browser session replaces the old one.
    assert stepped["sid"] != signed_in["sid"]
    assert stepped["auth_time"] >= signed_in["auth_time"]
    assert kept["acr"] == "aal2"
    assert (kept["sid"], kept["auth_time"]) == (stepped["sid"], stepped["auth_time"])


async def test_acr_values_aal2_without_a_second_factor_says_aal1(
    page: Page, live_server: LiveServer, rp: RelyingParty, clients: Clients
) -> None:
    """acr_values is a voluntary claim: the user is asked to sign in again (the most a
    password can do) and the ID token tells the client the truth, which it checks."""
    client = clients.register("openid-client step-up, no factor")
    result = await rp.run(
        "oidc-acr-step-up", client, rp.browser(page, live_server.new_user()), enrol="no"
    )
    assert result["pages"][1] == ["login"]
    assert [c["acr"] for c in result["claims"]] == ["aal1", "aal1", "aal1"]
    assert not any(c["satisfied"] for c in result["claims"])
