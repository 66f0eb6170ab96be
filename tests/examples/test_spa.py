"""examples/spa in Chromium: a public client doing code + PKCE with oauth4webapi (served from
tests/harness/node_modules) against a live auth-service on PostgreSQL, then UserInfo."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.async_api import Page, expect

from tests.support.examples import EXAMPLES, create_client, free_port, run_example
from tests.support.harness import missing_packages
from tests.support.live_server import PASSWORD, LiveServer, run_live_server
from tests.support.services import service_missing


@dataclass
class Spa:
    live: LiveServer
    url: str


@pytest.fixture(scope="module")
def spa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spa]:
    reason = missing_packages()
    if reason is not None:
        service_missing("Node harness (oauth4webapi)", reason)
    tmp = tmp_path_factory.mktemp("spa")
    port = free_port()
    base = f"http://localhost:{port}"
    # The browser reads the token and UserInfo answers only when our origin is allowed.
    with run_live_server(tmp, AUTH_SERVER__CORS_ORIGINS=json.dumps([base])) as live:
        client = create_client(
            live,
            tmp,
            *("--name", "Example SPA", "--type", "public", "--first-party"),
            *("--redirect-uri", f"{base}/callback", "--grant-type", "authorization_code"),
            *("--scope", "openid profile email"),
        )
        assert "client_secret" not in client or not client["client_secret"]
        argv = [str(EXAMPLES / "spa" / "serve.py"), "--issuer", live.url]
        argv += [f"--client-id={client['client_id']}", "--port", str(port)]  # may begin with "-"
        with run_example("spa", argv, tmp, port, "/config.json", host="localhost") as url:
            yield Spa(live, url)


def register(live: LiveServer, name: str) -> str:
    email = f"spa-{uuid.uuid4().hex[:8]}@example.com"
    with live.client() as http:
        body = {"email": email, "password": PASSWORD, "name": name}
        assert http.post("/v1/auth/register", json=body).status_code == 202
    return email


async def test_code_and_pkce_as_a_public_client_then_userinfo(page: Page, spa: Spa) -> None:
    email = register(spa.live, "Katherine Johnson")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    await page.goto(spa.url)
    await expect(page.get_by_role("status")).to_have_text("You are not signed in.")
    await page.get_by_role("button", name="Sign in").click()

    await expect(page).to_have_url(re.compile(re.escape(f"{spa.live.url}/login?")))
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()

    await expect(page.get_by_role("status")).to_have_text("Signed in.")
    await expect(page.locator("#name")).to_have_text("Katherine Johnson")
    await expect(page.locator("#email")).to_have_text(email)
    await expect(page).to_have_url(f"{spa.url}/")  # the code is gone from the address bar
    assert errors == []

    # The library came from this app's origin (no CDN); the token and UserInfo requests went
    # straight from the browser to auth-service (CORS).
    assert f"{spa.url}/vendor/oauth4webapi.js" in requests
    hosts = {re.sub(r"^(https?://[^/]+).*", r"\1", url) for url in requests}
    assert hosts <= {spa.url, spa.live.url}, hosts
    assert f"{spa.live.url}/oauth2/token" in requests
    assert any(url.startswith(f"{spa.live.url}/oauth2/userinfo") for url in requests)


async def test_a_callback_without_a_started_sign_in_is_refused(page: Page, spa: Spa) -> None:
    await page.goto(f"{spa.url}/callback?code=forged&state=forged")
    await expect(page.get_by_role("status")).to_contain_text("Sign-in failed")


def test_the_readme_gives_the_command_the_test_runs() -> None:
    readme = (EXAMPLES / "spa" / "README.md").read_text()
    assert "examples/spa/serve.py --issuer" in readme
