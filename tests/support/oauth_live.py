"""OAuth journeys against a live server (``live_server``) for the Node harness: register a
client with the real CLI, and be the browser between an authorization URL a third-party
library built and the callback it redeems (sign in, allow).

    client = create_client(live_server, "--auth-method", "client_secret_basic")
    callback = authorize_in_browser(live_server, url, user["email"], user["password"])
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.support.cli import run_cli
from tests.support.harness import Harness
from tests.support.live_server import LiveServer
from tests.support.pages import form
from tests.support.secrets import remember

REDIRECT = "https://app.example.com/callback"


def create_client(live: LiveServer, *options: str) -> dict[str, Any]:
    """``auth-service clients create`` on the live server's database; its JSON answer.
    Defaults: a first-party confidential code client with refresh tokens."""
    args = ["clients", "create", "--name", "Harness app", "--format", "json"]
    if "--type" not in options:
        args += ["--type", "confidential"]
    if "--redirect-uri" not in options:
        args += ["--redirect-uri", REDIRECT]
    if "--grant-type" not in options:
        args += ["--grant-type", "authorization_code", "--grant-type", "refresh_token"]
    if "--scope" not in options:
        args += ["--scope", "openid profile email offline_access"]
    args += ["--first-party", *options]
    done = run_cli(args, live.server.env, live.server.tmp)
    assert done.returncode == 0, done.stderr
    created: dict[str, Any] = json.loads(done.stdout)
    if created.get("client_secret"):
        remember(created["client_secret"])
    return created


def authorize_in_browser(live: LiveServer, url: str, email: str, password: str) -> str:
    """Open ``url`` (our authorization endpoint), sign in, allow; the callback URL the
    browser is sent to (its query holds the code or the error)."""
    origin = {"origin": live.url}
    with httpx.Client(base_url=live.url, timeout=30) as http:
        response = http.get(url)
        for _ in range(12):
            location = response.headers.get("location", "")
            if response.status_code in (302, 303) and not location.startswith("/"):
                return location
            if response.status_code in (302, 303):
                response = http.get(location)
                continue
            path = urlsplit(str(response.url)).path
            if path == "/login":
                fields = form(response.text, "/login")
                fields.update(email=email, password=password)
                response = http.post("/login", data=fields, headers=origin)
            elif 'action="/consent"' in response.text:
                fields = form(response.text, "/consent")
                fields["decision"] = "allow"
                response = http.post("/consent", data=fields, headers=origin)
            else:
                raise AssertionError(f"stuck at {response.url}: {response.status_code}")
    raise AssertionError("too many redirects")


def harness_code_flow(
    harness: Harness, live: LiveServer, scenario: str, user: dict[str, Any], **options: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A scenario's ``start`` (the authorization URL), the browser step as ``user``, then its
    ``finish`` with the callback; both results."""
    started = harness.run(scenario, base_url=live.url, step="start", **options)
    callback = authorize_in_browser(live, started["url"], user["email"], user["password"])
    done = harness.run(
        scenario,
        base_url=live.url,
        step="finish",
        callback=callback,
        verifier=started["verifier"],
        state=started["state"],
        nonce=started["nonce"],
        **options,
    )
    return started, done
