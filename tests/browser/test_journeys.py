"""Journeys through the hosted pages in Chromium, on PostgreSQL, mail over real SMTP.

Every page state a journey reaches is checked by axe-core: no serious or critical violation.
"""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit

import asyncpg
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.support.axe import axe_violations
from tests.support.live_server import LiveServer

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase, 2026"


def _email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


async def accessible(page: Page) -> None:
    violations = await axe_violations(page)
    assert violations == [], (page.url, violations)


async def sign_up(page: Page, server: LiveServer, email: str, name: str | None = None) -> None:
    await page.goto(f"{server.url}/register")
    await accessible(page)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    if name:
        await page.get_by_label("Name").fill(name)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    await accessible(page)


async def sign_in(page: Page, server: LiveServer, email: str, password: str = PASSWORD) -> None:
    await page.goto(f"{server.url}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).click()


async def mail_link(server: LiveServer, to: str, path: str) -> str:
    mail = await asyncio.to_thread(server.mailbox.next_mail, to)
    return mail.link(path)


async def test_sign_up_verify_sign_in_manage_account_sign_out(
    page: Page, browser: Browser, live_server: LiveServer
) -> None:
    email = _email("journey")
    await sign_up(page, live_server, email, name="Ada")

    # The link of the real email, over SMTP; GET shows a button, POST spends the token.
    link = await mail_link(live_server, email, "/verify-email")
    await page.goto(link)
    await accessible(page)
    await page.get_by_role("button", name="Verify email").click()
    await expect(page.get_by_role("status")).to_contain_text("confirmed")
    await accessible(page)

    # Another device signs in first: the password change must sign it out.
    other: BrowserContext = await browser.new_context()
    other_page = await other.new_page()
    await sign_in(other_page, live_server, email)
    await expect(other_page).to_have_url(f"{live_server.url}/account")

    await sign_in(page, live_server, email)
    await expect(page).to_have_url(f"{live_server.url}/account")
    await expect(page.locator(".lead")).to_contain_text(email)
    await expect(page.locator("li.current")).to_contain_text("This device")
    await accessible(page)

    await page.get_by_label("Name", exact=True).fill("Ada Lovelace")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("Your profile is saved.")
    await expect(page.get_by_label("Name", exact=True)).to_have_value("Ada Lovelace")

    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_role("status")).to_contain_text("other sessions are signed out")
    await accessible(page)

    await other_page.goto(f"{live_server.url}/account")
    await expect(other_page).to_have_url(f"{live_server.url}/login?return_to=%2Faccount")
    await other.close()

    await page.locator("header").get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{live_server.url}/login")
    await page.goto(f"{live_server.url}/account")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await sign_in(page, live_server, email, NEW_PASSWORD)
    await expect(page).to_have_url(f"{live_server.url}/account")


async def test_forgot_and_reset_password(page: Page, live_server: LiveServer) -> None:
    email = _email("reset")
    await sign_up(page, live_server, email)
    await mail_link(live_server, email, "/verify-email")  # consume the verification mail

    await page.goto(f"{live_server.url}/login")
    await page.get_by_role("link", name="Forgot password?").click()
    await accessible(page)
    await page.get_by_label("Email").fill(email)
    await page.get_by_role("button", name="Send reset link").click()
    await expect(page.get_by_role("status")).to_contain_text("If an account exists")
    await accessible(page)

    link = await mail_link(live_server, email, "/reset-password")
    await page.goto(link)
    await accessible(page)
    await page.get_by_label("New password").fill("short")
    await page.get_by_role("button", name="Set password").click()
    await expect(page.locator("#new_password-error")).to_contain_text("at least 8 characters")
    await accessible(page)
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Set password").click()
    await expect(page.get_by_role("status")).to_contain_text("Every session")

    # The link was spent: opening it again and submitting shows the friendly error.
    await page.goto(link)
    await page.get_by_label("New password").fill("yet another passphrase")
    await page.get_by_role("button", name="Set password").click()
    await expect(page.get_by_role("alert")).to_contain_text("already used")
    await expect(page.locator(".reference")).to_contain_text("Reference:")
    await accessible(page)

    await sign_in(page, live_server, email, NEW_PASSWORD)
    await expect(page).to_have_url(f"{live_server.url}/account")


async def test_an_expired_link_ends_on_the_error_page(page: Page, live_server: LiveServer) -> None:
    email = _email("expired")
    await sign_up(page, live_server, email)
    link = await mail_link(live_server, email, "/verify-email")
    conn = await asyncpg.connect(live_server.database_url)
    try:
        await conn.execute("UPDATE one_time_tokens SET expires_at = now() - interval '1 minute'")
    finally:
        await conn.close()
    await page.goto(link)
    await page.get_by_role("button", name="Verify email").click()
    await expect(page.get_by_role("alert")).to_contain_text("expired")


async def test_a_forged_form_is_refused_with_an_explanation(
    page: Page, live_server: LiveServer
) -> None:
    user = live_server.new_user()
    await page.goto(f"{live_server.url}/login")
    await page.get_by_label("Email").fill(user["email"])
    await page.get_by_label("Password").fill(user["password"])
    await page.locator('form[action="/login"] input[name=csrf_token]').evaluate(
        "(input) => input.value = 'forged'"
    )
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_role("alert")).to_contain_text("did not come from this site")
    await accessible(page)
    await page.goto(f"{live_server.url}/account")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


@pytest.mark.parametrize(
    "return_to",
    [
        "https://evil.example/account",
        "//evil.example/account",
        "\\\\evil.example/account",
        "/\\evil.example/account",
        "javascript:alert(document.domain)",
    ],
)
async def test_return_to_cannot_send_the_browser_elsewhere(
    page: Page, live_server: LiveServer, return_to: str
) -> None:
    user = live_server.new_user()
    await page.goto(f"{live_server.url}/login?return_to={return_to}")
    await page.get_by_label("Email").fill(user["email"])
    await page.get_by_label("Password").fill(user["password"])
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(f"{live_server.url}/account")
    assert urlsplit(page.url).netloc == urlsplit(live_server.url).netloc


async def test_a_locked_account_says_so_and_does_not_sign_in(
    page: Page, live_server: LiveServer
) -> None:
    user = live_server.new_user()
    for _ in range(5):
        await sign_in(page, live_server, user["email"], "not the password at all")
        await expect(page.get_by_role("alert")).to_have_text("The email or password is incorrect.")
    await sign_in(page, live_server, user["email"], user["password"])
    await expect(page.get_by_role("alert")).to_contain_text("Too many failed attempts")
    await accessible(page)
    await page.goto(f"{live_server.url}/account")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def test_german_end_to_end(browser: Browser, live_server: LiveServer) -> None:
    context = await browser.new_context(locale="de-DE")
    page = await context.new_page()
    try:
        email = _email("deutsch")
        await page.goto(f"{live_server.url}/register")
        await expect(page.locator("html")).to_have_attribute("lang", "de")
        await page.get_by_label("E-Mail").fill(email)
        await page.get_by_label("Passwort").fill(PASSWORD)
        await page.get_by_role("button", name="Konto erstellen").click()
        await expect(page.get_by_role("heading", name="Prüfen Sie Ihre E-Mails")).to_be_visible()
        await accessible(page)

        mail = await asyncio.to_thread(live_server.mailbox.next_mail, email)
        assert mail.subject == "Bestätigen Sie Ihre E-Mail-Adresse"
        await page.goto(mail.link("/verify-email"))
        await page.get_by_role("button", name="E-Mail bestätigen").click()
        await expect(page.get_by_role("status")).to_contain_text("bestätigt")

        await page.goto(f"{live_server.url}/login")
        await page.get_by_label("E-Mail").fill(email)
        await page.get_by_label("Passwort").fill("falsch, ganz falsch")
        await page.get_by_role("button", name="Anmelden", exact=True).click()
        await expect(page.get_by_role("alert")).to_have_text(
            "E-Mail-Adresse oder Passwort ist falsch."
        )
        await accessible(page)
        await page.get_by_label("Passwort").fill(PASSWORD)
        await page.get_by_role("button", name="Anmelden", exact=True).click()
        await expect(page.get_by_role("heading", name="Ihr Konto")).to_be_visible()
        await accessible(page)

        # The switch wins over the browser's language, and says so in the page.
        await page.get_by_role("link", name="English").click()
        await expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    finally:
        await context.close()


async def test_keyboard_only_sign_in_with_visible_focus(
    page: Page, live_server: LiveServer
) -> None:
    user = live_server.new_user()
    await page.goto(f"{live_server.url}/login")
    await page.keyboard.press("Tab")  # the skip link comes first
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")
    await page.get_by_label("Email").focus()
    await page.keyboard.type(user["email"])
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password")).to_be_focused()
    await page.keyboard.type(user["password"])
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{live_server.url}/account")


async def test_logout_page_and_the_other_pages_are_accessible(
    page: Page, live_server: LiveServer
) -> None:
    user = live_server.new_user()
    await sign_in(page, live_server, user["email"], user["password"])
    await page.goto(f"{live_server.url}/logout")
    await accessible(page)
    await page.get_by_role("main").get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{live_server.url}/login")
    await accessible(page)
    await page.goto(f"{live_server.url}/error")
    await accessible(page)
    await page.goto(f"{live_server.url}/register")
    await page.get_by_label("Email").fill(_email("weak"))
    await page.get_by_label("Password").fill("password")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.locator("#password-error")).to_contain_text("too common")
    await accessible(page)


async def test_deleting_the_account_is_scheduled_mailed_and_cancelled(
    page: Page, live_server: LiveServer
) -> None:
    """The account page asks for the deletion after the grace period (as DELETE
    /v1/users/me does), the owner gets the mail over SMTP, and the page cancels it."""
    email = _email("leaving")
    await sign_up(page, live_server, email)
    await asyncio.to_thread(live_server.mailbox.next_mail, email)  # the verification mail
    await sign_in(page, live_server, email)
    await expect(page).to_have_url(f"{live_server.url}/account")
    await expect(page.get_by_text("deleted 30 days after you ask")).to_be_visible()

    await page.locator("#delete-password").fill(PASSWORD)
    await page.get_by_role("button", name="Delete account").click()
    await expect(page.get_by_role("status")).to_contain_text("Your account will be deleted on")
    await expect(page.locator("#deletion-pending")).to_be_visible()
    await accessible(page)
    told = await asyncio.to_thread(live_server.mailbox.next_mail, email)
    assert told.subject == "Your account will be deleted"
    assert f"{live_server.url}/account" in told.text

    await page.get_by_role("button", name="Cancel the deletion").click()
    await expect(page.get_by_role("status")).to_have_text(
        "The deletion of your account is cancelled."
    )
    await expect(page.locator("#deletion-pending")).to_have_count(0)
    await expect(page.get_by_role("button", name="Delete account")).to_be_visible()
    await accessible(page)
