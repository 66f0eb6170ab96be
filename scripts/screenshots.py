"""Screenshots of every hosted page, desktop and phone width, light and dark: `make screenshots`.

Starts `auth-service serve` on the embedded default (SQLite, mail to the outbox) in a
temporary directory, walks every page state in Debian's Chromium (Playwright, as the browser
tests do), and writes `docs/images/ui-<page>-<desktop|phone>-<light|dark>.png`. Not part of
CI, so the tree stays clean; docs/ui.md shows the gallery.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pyotp
from playwright.async_api import Browser, Page, async_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images"
CLI = str(Path(sys.executable).with_name("auth-service"))
CHROMIUM = os.environ.get("AUTH_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORTS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, tmp: Path) -> None:
        self.port, self.management = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.outbox = tmp / "data" / "outbox"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AUTH_")},
            "AUTH_DATA_DIR": str(tmp / "data"),
            "AUTH_SERVER__PORT": str(self.port),
            "AUTH_SERVER__MANAGEMENT_PORT": str(self.management),
            "AUTH_SERVER__PUBLIC_URL": self.url,
            "AUTH_PASSWORDS__ARGON2_MEMORY_COST_KIB": "1024",
            "AUTH_PASSWORDS__ARGON2_TIME_COST": "1",
            "AUTH_RATE_LIMITS__ENABLED": "false",
            "AUTH_LOGGING__LEVEL": "WARNING",
        }
        subprocess.run([CLI, "migrate"], env=self.env, cwd=tmp, check=True, capture_output=True)
        self.process = subprocess.Popen(
            [CLI, "serve"], env=self.env, cwd=tmp, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{self.management}/health/ready", timeout=1)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit("screenshots: the server did not become ready")

    def last_link(self, path: str) -> str:
        for mail in sorted(
            self.outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True
        ):
            message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            found = re.search(rf"{re.escape(self.url)}{path}\?token=[\w-]+", text)
            if found:
                return found.group(0)
        raise SystemExit(f"screenshots: no {path} link in the outbox")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


Step = Callable[[Page], Awaitable[None]]


async def shoot(browser: Browser, name: str, server: Server, step: Step, **context: str) -> None:
    for form, viewport in VIEWPORTS.items():
        for scheme in ("light", "dark"):
            ctx = await browser.new_context(
                viewport=viewport,  # type: ignore[arg-type]
                color_scheme=scheme,  # type: ignore[arg-type]
                locale=context.get("locale", "en-US"),
            )
            if "cookie" in context:
                await ctx.add_cookies(
                    [{"name": "auth_session", "value": context["cookie"], "url": server.url}]
                )
            page = await ctx.new_page()
            await step(page)
            await page.screenshot(path=str(OUT / f"ui-{name}-{form}-{scheme}.png"), full_page=True)
            await ctx.close()
    print(f"screenshots: {name}")


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        try:
            await walk(server)
        finally:
            server.stop()


async def walk(server: Server) -> None:
    url = server.url
    account = "ada@example.com"
    async with httpx.AsyncClient(base_url=url) as http:
        body = {"email": account, "password": PASSWORD}
        await http.post("/v1/auth/register", json={**body, "name": "Ada"})
        await http.post("/v1/auth/login", json=body)
        # A second person with an authenticator app, for the second-factor page.
        second = {"email": "grace@example.com", "password": PASSWORD}
        await http.post("/v1/auth/register", json={**second, "name": "Grace"})
        token = (await http.post("/v1/auth/login", json=second)).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        secret = (await http.post("/v1/mfa/totp", headers=bearer)).json()["secret"]
        code = {"code": pyotp.TOTP(secret).now()}
        (await http.post("/v1/mfa/totp/confirm", json=code, headers=bearer)).raise_for_status()
    verify = server.last_link("/verify-email")
    # An application that asks for consent (not first-party).
    created = await asyncio.to_thread(
        subprocess.run,
        [CLI, "clients", "create", "--name", "Photo Album", "--type", "public",
         "--redirect-uri", "http://127.0.0.1:9/callback", "--grant-type", "authorization_code",
         "--scope", "openid profile email offline_access", "--format", "json"],
        env=server.env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    query = httpx.QueryParams(
        response_type="code",
        client_id=json.loads(created.stdout)["client_id"],
        redirect_uri="http://127.0.0.1:9/callback",
        scope="openid profile email offline_access",
        state="screenshot",
        nonce="screenshot",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        code_challenge_method="S256",
    )
    authorize = f"/oauth2/authorize?{query}"

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)

        async def goto(path: str) -> Step:
            async def step(page: Page) -> None:
                await page.goto(path if path.startswith("http") else url + path)

            return step

        async def failed_login(page: Page) -> None:
            await page.goto(f"{url}/login")
            await page.get_by_label("Email").fill(account)
            await page.get_by_label("Password").fill("not the password")
            await page.get_by_role("button", name="Sign in", exact=True).click()

        async def weak_registration(page: Page) -> None:
            await page.goto(f"{url}/register")
            await page.get_by_label("Email").fill("grace@example.com")
            await page.get_by_label("Password").fill("password")
            await page.get_by_role("button", name="Create account").click()

        async def forgot_sent(page: Page) -> None:
            await page.goto(f"{url}/forgot-password")
            await page.get_by_label("Email").fill("someone@example.com")
            await page.get_by_role("button", name="Send reset link").click()

        async def check_email(page: Page) -> None:
            await page.goto(f"{url}/register")
            await page.get_by_label("Email").fill(f"new-{time.monotonic_ns()}@example.com")
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Create account").click()

        async def totp_setup(page: Page) -> None:
            await page.goto(f"{url}/account/security")
            # The first context starts the enrolment; the others find it pending.
            start = page.get_by_role("button", name="Set up authenticator app")
            if await start.count():
                await start.click()

        async def second_factor(page: Page) -> None:
            await page.goto(f"{url}/login")
            await page.get_by_label("Email").fill("grace@example.com")
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Sign in", exact=True).click()
            await page.wait_for_url("**/login/mfa**")

        signed_in = await browser.new_context()
        page = await signed_in.new_page()
        await page.goto(f"{url}/login")
        await page.get_by_label("Email").fill(account)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in", exact=True).click()
        cookie = next(c["value"] for c in await signed_in.cookies() if c["name"] == "auth_session")

        await shoot(browser, "login", server, await goto("/login"))
        await shoot(browser, "login-error", server, failed_login)
        await shoot(browser, "login-de", server, await goto("/login"), locale="de-DE")
        await shoot(browser, "register", server, await goto("/register"))
        await shoot(browser, "register-errors", server, weak_registration)
        await shoot(browser, "check-email", server, check_email)
        await shoot(browser, "verify-email", server, await goto(verify))
        await shoot(browser, "forgot-password", server, await goto("/forgot-password"))
        await shoot(browser, "forgot-password-sent", server, forgot_sent)
        await shoot(browser, "reset-password", server, await goto("/reset-password?token=x"))
        await shoot(browser, "account", server, await goto("/account"), cookie=cookie)
        await shoot(
            browser, "account-de", server, await goto("/account"), cookie=cookie, locale="de-DE"
        )
        await shoot(browser, "security", server, await goto("/account/security"), cookie=cookie)
        await shoot(browser, "totp-setup", server, totp_setup, cookie=cookie)
        await shoot(browser, "login-mfa", server, second_factor)
        await shoot(browser, "consent", server, await goto(authorize), cookie=cookie)
        await shoot(browser, "logout", server, await goto("/logout"), cookie=cookie)
        await shoot(browser, "error", server, await goto("/error"))
        await signed_in.close()
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
