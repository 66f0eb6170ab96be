"""The test's side of the OpenID Connect harness (tests/harness/test_oidc_*.py): clients
registered through the admin API, and the browser a relying-party scenario asks for.

A scenario (openid-client or oauth4webapi in Node) builds the authorization URL and asks
``{"ask": "browser", "url": ...}``; ``BrowserStep`` opens it in Playwright's Chromium, signs in
on our pages (password, then the authenticator app's code when asked), allows the consent, and
answers with the URL the client's redirect URI received and the pages it went through:

    client = clients.register("An app", alg="ES256")
    browser = rp.browser(page, live_server.new_user())
    result = await rp.run("oidc-code-flow", client, browser)  # RelyingParty: harness.converse
    assert browser.trips[0].pages == ["login", "consent"]

The client's URIs are on a small web server of the test's (``ClientEndpoint``): the browser
really arrives there, and the test reads the URL it arrived at.
"""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from playwright.async_api import Page

from tests.support.harness import Harness
from tests.support.live_server import API_SCOPE, LiveServer
from tests.support.mfa import code_at
from tests.support.pages import form
from tests.support.secrets import remember
from tests.support.server import CLI

__all__ = [
    "API_SCOPE",
    "USER_SCOPES",
    "BrowserStep",
    "ClientEndpoint",
    "Clients",
    "FormBrowser",
    "Registered",
    "RelyingParty",
    "Trip",
    "enrol_totp",
    "redirected_to",
]

USER_SCOPES = "openid profile email offline_access"
# Our pages, by path, as a trip lists them.
PAGES = {
    "/login": "login",
    "/login/mfa": "mfa",
    "/consent": "consent",
    "/oauth2/logout": "logout",
}


class _Answer(BaseHTTPRequestHandler):
    def _ok(self) -> None:
        body = b"<!doctype html><title>The app</title><main>Back at the app.</main>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _ok

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the callback's query holds codes: not for any log


class ClientEndpoint:
    """The relying party's web server on loopback: every path answers 200, so a browser sent
    to the redirect or post-logout URI arrives somewhere real."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.redirect_uri = f"{self.origin}/callback"
        self.other_redirect_uri = f"{self.origin}/other-callback"
        self.post_logout_redirect_uri = f"{self.origin}/signed-out"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ClientEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass(frozen=True)
class Registered:
    client_id: str
    client_secret: str | None
    alg: str

    def options(self) -> dict[str, str]:
        """The scenario options that name this client."""
        out = {"client_id": self.client_id, "alg": self.alg}
        if self.client_secret:
            out["client_secret"] = self.client_secret
        return out


class Clients:
    """Registers clients through ``/v1/admin/clients``, as an operator's tooling would, with an
    administrator the CLI made (``users promote``)."""

    def __init__(self, live: LiveServer, endpoint: ClientEndpoint) -> None:
        self._live = live
        self.endpoint = endpoint
        self._admin: dict[str, str] | None = None  # credentials
        self._headers: dict[str, str] = {}

    def _log_in(self) -> dict[str, str]:
        """A bearer header of the administrator (made on first use); a new one each call."""
        if self._admin is None:
            admin = self._live.new_user(f"oidc-admin-{uuid.uuid4().hex[:8]}@example.com")
            promoted = subprocess.run(
                [CLI, "users", "promote", "--email", admin["email"]],
                cwd=self._live.server.tmp,
                env=self._live.server.env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert promoted.returncode == 0, promoted.stderr
            self._admin = {"email": admin["email"], "password": admin["password"]}
        with self._live.client() as http:
            login = http.post("/v1/auth/login", json=self._admin)
        assert login.status_code == 200, login.text
        return {"Authorization": f"Bearer {login.json()['access_token']}"}

    def register(
        self,
        name: str,
        *,
        client_type: str = "confidential",
        alg: str = "RS256",
        scope: str = USER_SCOPES,
        grant_types: tuple[str, ...] = ("authorization_code", "refresh_token"),
        redirect_uris: tuple[str, ...] | None = None,
        post_logout_redirect_uris: tuple[str, ...] | None = None,
        first_party: bool = False,
        **metadata: Any,
    ) -> Registered:
        """A client whose URIs are the endpoint's (its redirect URI and post-logout URI unless
        given); ``metadata``: more fields of the admin API's client body."""
        if redirect_uris is None:
            redirect_uris = (self.endpoint.redirect_uri,)
        if post_logout_redirect_uris is None:
            post_logout_redirect_uris = (self.endpoint.post_logout_redirect_uri,)
        body = {
            "name": name,
            "type": client_type,
            "redirect_uris": list(redirect_uris),
            "post_logout_redirect_uris": list(post_logout_redirect_uris),
            "grant_types": list(grant_types),
            "scope": scope,
            "first_party": first_party,
            "id_token_signed_response_alg": alg,
            **metadata,
        }
        with self._live.client() as http:
            r = http.post("/v1/admin/clients", json=body, headers=self._headers)
            if r.status_code == 401:  # first use, or the access token expired: log in
                self._headers = self._log_in()
                r = http.post("/v1/admin/clients", json=body, headers=self._headers)
        assert r.status_code == 201, r.text
        created = r.json()
        if created["client_secret"]:
            remember(created["client_secret"])
        return Registered(created["client_id"], created["client_secret"], alg)


async def enrol_totp(live: LiveServer, user: dict[str, Any]) -> str:
    """Set up an authenticator app over the JSON API (confirmed with the previous step's code,
    so the current one is free for a sign-in); its secret."""
    bearer = {"Authorization": f"Bearer {user['access_token']}"}
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        r = await http.post("/v1/mfa/totp", headers=bearer)
        assert r.status_code == 200, r.text
        secret = str(r.json()["secret"])
        r = await http.post(
            "/v1/mfa/totp/confirm", json={"code": code_at(secret, -1)}, headers=bearer
        )
        assert r.status_code == 204, r.text
    return secret


@dataclass
class Trip:
    """One visit of the browser: where it ended (on the client) and our pages on the way."""

    url: str
    pages: list[str]

    @property
    def query(self) -> dict[str, str]:
        return dict(httpx.URL(self.url).params)


Ask = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass
class BrowserStep:
    """Answers a scenario's asks: ``browser`` (a trip through our pages to the client at
    ``origin``) and any kind added to ``asks``. ``consent`` is the button pressed on the
    consent page."""

    page: Page
    live: LiveServer
    origin: str
    user: dict[str, Any]
    consent: str = "Allow"
    totp_secret: str | None = None
    asks: dict[str, Ask] = field(default_factory=dict)
    trips: list[Trip] = field(default_factory=list)

    async def __call__(self, ask: dict[str, Any]) -> Any:
        kind = ask["ask"]
        if kind == "browser":
            return asdict(await self.visit(ask["url"]))
        if kind not in self.asks:
            raise AssertionError(f"the scenario asked for {kind!r}, which this test does not do")
        return await self.asks[kind](ask)

    async def visit(self, url: str) -> Trip:
        page = self.page
        pages: list[str] = []
        await page.goto(url)
        for _ in range(8):
            current = page.url
            if current.startswith(f"{self.origin}/"):
                trip = Trip(current, pages)
                self.trips.append(trip)
                return trip
            path = urlsplit(current).path
            name = PAGES.get(path)
            if name is None:
                text = (await page.content())[:1000]
                raise AssertionError(f"the browser stopped at {current}: {text}")
            pages.append(name)
            await self._act(name)
            await page.wait_for_url(lambda u, was=current: u != was)  # type: ignore[misc]
        raise AssertionError(f"no way back to the client from {url}: {pages}")

    async def _act(self, name: str) -> None:
        main = self.page.locator("main")
        if name == "login":
            await main.get_by_label("Email").fill(self.user["email"])
            await main.get_by_label("Password").fill(self.user["password"])
            await main.get_by_role("button", name="Sign in", exact=True).click()
        elif name == "mfa":
            assert self.totp_secret, "a second step was asked for a user without an app"
            await main.get_by_label("Authentication code").fill(code_at(self.totp_secret))
            await main.get_by_role("button", name="Verify").click()
        elif name == "consent":
            await main.get_by_role("button", name=self.consent, exact=True).click()
        else:
            await main.get_by_role("button", name="Sign out", exact=True).click()


@dataclass
class RelyingParty:
    """The harness scenarios run against the live server for registered clients."""

    harness: Harness
    live: LiveServer
    clients: Clients

    def browser(self, page: Page, user: dict[str, Any]) -> BrowserStep:
        return BrowserStep(page, self.live, self.clients.endpoint.origin, user)

    async def run(
        self, scenario: str, client: Registered, browser: BrowserStep, **options: Any
    ) -> Any:
        """``scenario`` for ``client``, its asks answered by ``browser``; the client's URIs
        are the endpoint's."""
        endpoint = self.clients.endpoint
        return await self.harness.converse(
            scenario,
            base_url=self.live.url,
            answer=browser,
            redirect_uri=endpoint.redirect_uri,
            post_logout_redirect_uri=endpoint.post_logout_redirect_uri,
            **client.options(),
            **options,
        )


class FormBrowser:
    """A browser without Chromium, for the provider-behaviour tests that need a code or a
    signed-in session: httpx with a cookie jar, posting our sign-in and consent forms (Allow)
    as a browser would, following our redirects and stopping at the first one elsewhere."""

    def __init__(self, live: LiveServer, user: dict[str, Any]) -> None:
        self.live = live
        self.user = user
        self.http = httpx.Client(base_url=live.url, timeout=30)
        self.pages: list[str] = []

    def __enter__(self) -> FormBrowser:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.http.close()

    def _post(self, html: str, action: str, values: dict[str, str]) -> httpx.Response:
        fields = form(html, action)
        fields.update(values)
        return self.http.post(action, data=fields, headers={"origin": self.live.url})

    def visit(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        """GET ``path`` and go on through our pages; the response that leaves them (a
        redirect to another origin) or the first page that is neither sign-in nor consent."""
        self.pages = []
        r = self.http.get(path, params=params)
        for _ in range(10):
            location = r.headers.get("location")
            if r.status_code in (302, 303) and location:
                target = urljoin(str(r.url), location)
                if not target.startswith(f"{self.live.url}/"):
                    return r
                r = self.http.get(target)
            elif r.status_code == 200 and 'action="/login"' in r.text:
                self.pages.append("login")
                r = self._post(
                    r.text,
                    "/login",
                    {"email": self.user["email"], "password": self.user["password"]},
                )
            elif r.status_code == 200 and 'action="/consent"' in r.text:
                self.pages.append("consent")
                r = self._post(r.text, "/consent", {"decision": "allow"})
            else:
                return r
        raise AssertionError(f"no end to the redirects from {path}")


def redirected_to(response: httpx.Response, uri: str) -> dict[str, str]:
    """The query of a redirect to ``uri`` (exactly that URI, plus a query)."""
    assert response.status_code in (302, 303), (response.status_code, response.text[:300])
    location = httpx.URL(response.headers["location"])
    assert str(location.copy_with(query=None)) == uri, location
    return dict(location.params)
