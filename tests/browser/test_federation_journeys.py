"""Signing in with another identity provider, in Chromium, against a real one: panva's
oidc-provider 9 (tests/harness/upstream-idp.mjs), on PostgreSQL. Connectors are made with
the real CLI (`auth-service connectors create`), as an operator would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Page, expect

from tests.support.axe import axe_violations
from tests.support.cli import run_cli
from tests.support.live_server import LiveServer
from tests.support.upstream_idp import UpstreamIdp, upstream_idp

PLAIN = "upstream"  # emails not trusted: a collision asks for the password first
TRUSTED = "trusted"  # --trust-email: a verified email links to the existing account


@pytest.fixture(scope="module")
def idp(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamIdp]:
    uris = [f"{live_server.url}/login/federated/{c}/callback" for c in (PLAIN, TRUSTED)]
    with upstream_idp(uris) as upstream:
        tmp = tmp_path_factory.mktemp("connectors")
        secret = tmp / "secret"
        secret.write_text(upstream.client_secret + "\n")
        for connector, name, extra in (
            (PLAIN, "Upstream Test", []),
            (TRUSTED, "Trusted Upstream", ["--trust-email"]),
        ):
            result = _cli(
                live_server,
                tmp,
                [
                    *("connectors", "create", "--id", connector, "--name", name, "--type", "oidc"),
                    *("--issuer", upstream.issuer, "--client-id", upstream.client_id),
                    *("--client-secret-file", str(secret), "--format", "json", *extra),
                ],
            )
            assert result.returncode == 0, result.stderr
            assert f"/login/federated/{connector}/callback" in result.stdout
        yield upstream


def _cli(server: LiveServer, tmp: Path, args: list[str]):  # type: ignore[no-untyped-def]
    return run_cli(args, dict(server.server.env), tmp)


async def _accessible(page: Page) -> None:
    violations = await axe_violations(page)
    assert violations == [], (page.url, violations)


async def _upstream_login(page: Page, login: str) -> None:
    """The development login form of oidc-provider: any login name, any password."""
    await page.locator("input[name=login]").fill(login)
    await page.locator("input[name=password]").fill("anything")
    await page.get_by_role("button", name="Sign-in").click()


async def _rows(server: LiveServer, email: str) -> tuple[int, int]:
    conn = await asyncpg.connect(server.database_url)
    try:
        users = await conn.fetchval("SELECT count(*) FROM users WHERE email = $1", email)
        links = await conn.fetchval(
            "SELECT count(*) FROM federated_identities f JOIN users u ON u.id = f.user_id "
            "WHERE u.email = $1",
            email,
        )
    finally:
        await conn.close()
    return int(users), int(links)


async def _sign_out(page: Page, server: LiveServer) -> None:
    await page.get_by_role("banner").get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{server.url}/login")


async def test_first_sign_in_creates_the_account_and_the_next_one_finds_it(
    page: Page, live_server: LiveServer, idp: UpstreamIdp
) -> None:
    email = f"fed-{uuid.uuid4().hex[:8]}@example.com"
    await page.goto(f"{live_server.url}/login")
    await _accessible(page)
    await page.get_by_role("button", name="Continue with Upstream Test").click()
    assert page.url.startswith(idp.issuer)
    await _upstream_login(page, email)

    await expect(page).to_have_url(f"{live_server.url}/account")
    await expect(page.locator(".lead")).to_contain_text(email)
    await expect(page.locator("ul.linked")).to_contain_text("Upstream Test")
    await _accessible(page)
    assert await _rows(live_server, email) == (1, 1)

    await _sign_out(page, live_server)
    await page.get_by_role("button", name="Continue with Upstream Test").click()
    # Still signed in upstream: straight back, to the same account.
    await expect(page).to_have_url(f"{live_server.url}/account")
    await expect(page.locator(".lead")).to_contain_text(email)
    assert await _rows(live_server, email) == (1, 1)


async def test_an_email_collision_asks_for_the_password_then_links_from_the_account(
    page: Page, live_server: LiveServer, idp: UpstreamIdp
) -> None:
    owner = live_server.new_user()  # has a password; the upstream asserts the same email
    await page.goto(f"{live_server.url}/login")
    await page.get_by_role("button", name="Continue with Upstream Test").click()
    await _upstream_login(page, owner["email"])

    await expect(
        page.get_by_role("heading", name="Sign in with your password first")
    ).to_be_visible()
    await expect(page.get_by_role("alert")).to_contain_text("exists already")
    await expect(page.locator(".reference")).to_contain_text("Reference:")
    await _accessible(page)
    assert await _rows(live_server, owner["email"]) == (1, 0)

    # Proving the account with its password, then linking from the account page.
    await page.get_by_role("link", name="Sign in with your password").click()
    await page.get_by_label("Email").fill(owner["email"])
    await page.get_by_label("Password").fill(owner["password"])
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(f"{live_server.url}/account")
    await page.get_by_role("button", name="Link Upstream Test").click()
    # Still signed in upstream as the same person: straight back, linked.
    await expect(page).to_have_url(f"{live_server.url}/account")
    await expect(page.locator("ul.linked")).to_contain_text("Upstream Test")
    assert await _rows(live_server, owner["email"]) == (1, 1)


async def test_a_trusted_verified_email_links_the_existing_account_and_can_be_unlinked(
    page: Page, live_server: LiveServer, idp: UpstreamIdp
) -> None:
    owner = live_server.new_user()
    await page.goto(f"{live_server.url}/login")
    await page.get_by_role("button", name="Continue with Trusted Upstream").click()
    await _upstream_login(page, owner["email"])

    await expect(page).to_have_url(f"{live_server.url}/account")
    await expect(page.locator(".lead")).to_contain_text(owner["email"])
    assert await _rows(live_server, owner["email"]) == (1, 1)

    # The account has a password: the link is not the last way in, so it may go.
    await page.get_by_role("button", name="Unlink Trusted Upstream").click()
    await expect(page.get_by_role("status")).to_contain_text("unlinked")
    assert await _rows(live_server, owner["email"]) == (1, 0)


async def test_an_unverified_email_is_never_linked_even_when_trusted(
    page: Page, live_server: LiveServer, idp: UpstreamIdp
) -> None:
    owner = live_server.new_user(f"unverified-{uuid.uuid4().hex[:8]}@example.com")
    await page.goto(f"{live_server.url}/login")
    await page.get_by_role("button", name="Continue with Trusted Upstream").click()
    await _upstream_login(page, owner["email"])

    await expect(
        page.get_by_role("heading", name="Sign in with your password first")
    ).to_be_visible()
    assert await _rows(live_server, owner["email"]) == (1, 0)


async def test_the_last_way_to_sign_in_cannot_be_unlinked(
    page: Page, live_server: LiveServer, idp: UpstreamIdp
) -> None:
    email = f"only-fed-{uuid.uuid4().hex[:8]}@example.com"
    await page.goto(f"{live_server.url}/login")
    await page.get_by_role("button", name="Continue with Upstream Test").click()
    await _upstream_login(page, email)
    await expect(page).to_have_url(f"{live_server.url}/account")

    await page.get_by_role("button", name="Unlink Upstream Test").click()
    await expect(page.get_by_role("alert")).to_contain_text("last way to sign in")
    assert await _rows(live_server, email) == (1, 1)
