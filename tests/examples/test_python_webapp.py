"""examples/python-webapp in Chromium: sign in through a live auth-service (PostgreSQL) with
authlib's client, see the name and email, sign out at both ends (RP-initiated logout)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.support.examples import EXAMPLES, create_client, free_port, run_example
from tests.support.live_server import PASSWORD, LiveServer


@pytest.fixture
async def webapp(live_server: LiveServer, tmp_path: Path) -> AsyncIterator[str]:
    port = free_port()
    base = f"http://localhost:{port}"
    client = create_client(
        live_server,
        tmp_path,
        *("--name", "Example web app", "--type", "confidential", "--first-party"),
        *("--redirect-uri", f"{base}/callback", "--post-logout-redirect-uri", f"{base}/"),
        *("--grant-type", "authorization_code", "--scope", "openid profile email"),
    )
    argv = [str(EXAMPLES / "python-webapp" / "app.py"), "--issuer", live_server.url]
    # "=": a generated id or secret may begin with "-", which argparse would take for an option.
    argv += [f"--client-id={client['client_id']}", f"--client-secret={client['client_secret']}"]
    argv += ["--port", str(port)]
    with run_example("python-webapp", argv, tmp_path, port, "/health", host="localhost") as url:
        yield url


def register(live_server: LiveServer, name: str) -> str:
    email = f"webapp-{uuid.uuid4().hex[:8]}@example.com"
    with live_server.client() as http:
        body = {"email": email, "password": PASSWORD, "name": name}
        r = http.post("/v1/auth/register", json=body)
        assert r.status_code == 202, r.text
    return email


async def test_sign_in_shows_the_user_then_sign_out_ends_both_sessions(
    page: Page, live_server: LiveServer, webapp: str
) -> None:
    email = register(live_server, "Grace Hopper")
    await page.goto(webapp)
    await expect(page.get_by_text("You are not signed in.")).to_be_visible()
    await page.get_by_role("link", name="Sign in").click()

    # auth-service's hosted sign-in page (another origin), then back to the app's callback.
    await expect(page).to_have_url(re.compile(re.escape(f"{live_server.url}/login?")))
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()

    await expect(page).to_have_url(f"{webapp}/")
    await expect(page.locator("#name")).to_have_text("Grace Hopper")
    await expect(page.locator("#email")).to_have_text(email)

    # Signed in at auth-service too: its account page opens without asking.
    account = await page.context.new_page()
    await account.goto(f"{live_server.url}/account")
    await expect(account).to_have_url(f"{live_server.url}/account")
    await account.close()

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(re.escape(f"{webapp}/") + r"(\?state=[^&]+)?$"))
    await expect(page.get_by_text("You are not signed in.")).to_be_visible()

    # RP-initiated logout ended the browser's session at auth-service as well.
    await page.goto(f"{live_server.url}/account")
    assert httpx.URL(page.url).path == "/login", page.url


async def test_a_forged_callback_is_refused(page: Page, webapp: str) -> None:
    """A code and state the app never asked for: authlib finds no matching state."""
    response = await page.goto(f"{webapp}/callback?code=forged&state=forged")
    assert response is not None
    assert response.status == 400
    await expect(page.get_by_text("Sign-in failed")).to_be_visible()


def test_the_readme_gives_the_command_the_test_runs() -> None:
    readme = (EXAMPLES / "python-webapp" / "README.md").read_text()
    assert "examples/python-webapp/app.py --issuer" in readme
