"""The device authorization grant (RFC 8628) with openid-client 6: the device side
(``initiateDeviceAuthorization``, then ``pollDeviceAuthorizationGrant`` polling at the
interval) runs in the Node harness while Chromium is the user: the code typed on /device
(field "Code", button Continue), our sign-in page, the consent page, "Device connected".

The client is registered with the CLI by the standard grant name; one harness run covers the
flow (polling errors, single use and rate limits are API tests: tests/api/test_oauth_device.py).
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from tests.support.axe import axe_violations
from tests.support.harness import Harness
from tests.support.live_server import LiveServer
from tests.support.oauth_live import create_client

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


async def test_openid_client_polls_while_the_user_enters_the_code_in_chromium(
    page: Page, live_server: LiveServer, harness: Harness
) -> None:
    client = create_client(
        live_server, "--type", "public", "--grant-type", GRANT, "--grant-type", "refresh_token"
    )
    assert GRANT in client["grant_types"]
    user = live_server.new_user()
    pages: list[str] = []

    async def seen(name: str) -> None:
        """Each of the device journey's pages is checked by axe-core on the way."""
        pages.append(name)
        violations = await axe_violations(page)
        assert violations == [], (page.url, violations)

    async def be_the_user(ask: dict[str, Any]) -> dict[str, Any]:
        assert ask["ask"] == "device", ask
        assert ask["verificationUriComplete"].endswith(f"?user_code={ask['userCode']}")
        main = page.locator("main")
        await page.goto(ask["verificationUri"])
        await seen("device")
        # Typed as a person might: lower case, without the dash.
        await main.get_by_label("Code", exact=True).fill(ask["userCode"].replace("-", "").lower())
        await main.get_by_role("button", name="Continue", exact=True).click()
        await page.wait_for_url("**/login?*")
        pages.append("login")
        await main.get_by_label("Email").fill(user["email"])
        await main.get_by_label("Password").fill(user["password"])
        await main.get_by_role("button", name="Sign in", exact=True).click()
        await page.wait_for_url("**/device/continue?*")
        await seen("consent")
        await main.get_by_role("button", name="Allow", exact=True).click()
        heading = main.get_by_role("heading", name="Device connected")
        await expect(heading).to_be_visible()
        await seen("connected")
        return {"pages": pages}

    result = await harness.converse(
        "adv-device",
        base_url=live_server.url,
        answer=be_the_user,
        client_id=client["client_id"],
    )
    assert result["deviceAuthorizationEndpoint"] == live_server.url + "/oauth2/device_authorization"
    assert result["user"]["pages"] == ["device", "login", "consent", "connected"]
    assert result["tokenType"].lower() == "bearer"
    assert result["hasRefreshToken"] is True
    claims = result["claims"]
    assert claims["sub"] == user["user"]["id"]
    assert claims["aud"] == client["client_id"]
    assert claims["amr"] == ["pwd"]
    assert result["userinfo"]["email"] == user["email"]
