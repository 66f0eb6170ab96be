"""MFA journeys in Chromium on a live server at ``localhost`` (WebAuthn needs a domain as RP
id), PostgreSQL, Redis and real SMTP: a passkey enrolled on /account/security signs in with
no password (Chromium's virtual authenticator: ctap2, internal, resident keys, user
verification); without user verification it is refused; an authenticator app is set up from
the key shown on the page and its code (pyotp) finishes the second step. axe-core checks every
new page state."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from playwright.async_api import Page, expect

from tests.support.axe import axe_violations
from tests.support.live_server import LiveServer, run_live_server
from tests.support.webauthn_virtual import add_virtual_authenticator


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_live_server(tmp_path_factory.mktemp("mfa-server"), public_host="localhost") as live:
        yield live


async def accessible(page: Page) -> None:
    violations = await axe_violations(page)
    assert violations == [], (page.url, violations)


async def password_sign_in(page: Page, server: LiveServer, user: dict[str, str]) -> None:
    await page.goto(f"{server.url}/login")
    await page.get_by_label("Email").fill(user["email"])
    await page.get_by_label("Password").fill(user["password"])
    await page.get_by_role("button", name="Sign in", exact=True).click()


async def sign_out(page: Page, server: LiveServer) -> None:
    await page.locator("header").get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{server.url}/login")


def code(secret: str, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30 * steps))


async def test_passkey_enrolled_then_sign_in_without_a_password(
    page: Page, server: LiveServer
) -> None:
    authenticator = await add_virtual_authenticator(page)
    user = server.new_user(f"passkey-{uuid.uuid4().hex[:8]}@example.com")
    await password_sign_in(page, server, user)
    await expect(page).to_have_url(f"{server.url}/account")
    await page.get_by_role("link", name="Manage sign-in methods").click()
    await expect(page).to_have_url(f"{server.url}/account/security")
    await accessible(page)

    await page.get_by_label("Passkey name").fill("Test laptop")
    await page.get_by_role("button", name="Add passkey").click()
    await expect(page.get_by_role("status")).to_have_text("Your passkey is added.")
    await expect(page.get_by_text("Test laptop", exact=True)).to_be_visible()
    await accessible(page)
    assert len(await authenticator.credentials()) == 1

    await page.get_by_label("New name for Test laptop").fill("Work laptop")
    await page.get_by_role("button", name="Rename").click()
    await expect(page.get_by_role("status")).to_have_text("Your passkey is renamed.")

    await sign_out(page, server)
    await accessible(page)
    await page.get_by_role("button", name="Sign in with a passkey").click()
    await expect(page).to_have_url(f"{server.url}/account")
    await expect(page.locator(".lead")).to_contain_text(user["email"])

    # The same passkey without user verification is refused: still signed out.
    await sign_out(page, server)
    await authenticator.set_user_verified(False)
    await page.get_by_role("button", name="Sign in with a passkey").click()
    await expect(page.get_by_role("alert")).to_contain_text("passkey did not work")
    await expect(page).to_have_url(f"{server.url}/login")
    await accessible(page)
    await page.goto(f"{server.url}/account")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def test_passkey_as_the_second_step(page: Page, server: LiveServer) -> None:
    await add_virtual_authenticator(page)
    user = server.new_user(f"second-{uuid.uuid4().hex[:8]}@example.com")
    await password_sign_in(page, server, user)
    await page.goto(f"{server.url}/account/security")
    await page.get_by_role("button", name="Add passkey").click()
    await expect(page.get_by_role("status")).to_have_text("Your passkey is added.")
    await sign_out(page, server)

    await password_sign_in(page, server, user)
    await expect(page).to_have_url(re.compile(re.escape(f"{server.url}/login/mfa?flow=") + ".+"))
    await expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    await accessible(page)
    await page.get_by_role("button", name="Continue with a passkey").click()
    await expect(page).to_have_url(f"{server.url}/account")


async def test_authenticator_app_then_sign_in_with_its_code(page: Page, server: LiveServer) -> None:
    user = server.new_user(f"totp-{uuid.uuid4().hex[:8]}@example.com")
    await password_sign_in(page, server, user)
    await page.goto(f"{server.url}/account/security")
    await page.get_by_role("button", name="Set up authenticator app").click()
    await expect(page.get_by_role("img", name="QR code to scan")).to_be_visible()
    await accessible(page)
    secret = (await page.locator("#totp-key").inner_text()).strip()
    await page.get_by_label("Authentication code").fill(code(secret, -1))
    await page.get_by_role("button", name="Verify").click()
    await expect(page.get_by_role("status")).to_contain_text("authenticator app is set up")
    await accessible(page)

    await page.get_by_role("button", name="Generate recovery codes").click()
    await expect(page.locator("ul.codes li")).to_have_count(10)
    await accessible(page)
    recovery = (await page.locator("ul.codes li").first.inner_text()).strip()

    await sign_out(page, server)
    await password_sign_in(page, server, user)
    await expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    await accessible(page)
    await page.get_by_role("link", name="Use a recovery code").click()
    await expect(page.get_by_label("Recovery code")).to_be_visible()
    await accessible(page)
    await page.get_by_role("link", name="Use an authentication code").click()
    await page.get_by_label("Authentication code").fill(
        "000000" if code(secret) != "000000" else "111111"
    )
    await page.get_by_role("button", name="Verify").click()
    await expect(page.get_by_role("alert")).to_contain_text("not accepted")
    await accessible(page)
    await page.get_by_label("Authentication code").fill(code(secret))
    await page.get_by_role("button", name="Verify").click()
    await expect(page).to_have_url(f"{server.url}/account")

    await sign_out(page, server)
    await password_sign_in(page, server, user)
    await page.get_by_role("link", name="Use a recovery code").click()
    await page.get_by_label("Recovery code").fill(recovery)
    await page.get_by_role("button", name="Verify").click()
    await expect(page).to_have_url(f"{server.url}/account")
