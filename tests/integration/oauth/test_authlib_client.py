"""A third party completes our code flow: authlib's ``AsyncOAuth2Client`` against a real
``auth-service serve`` (PostgreSQL, Redis), with PKCE (S256), the browser step done by
posting the hosted login form, and the ID token verified with authlib's own JOSE against our
JWKS (``CodeIDToken``: iss, aud, exp, iat, nonce, at_hash). Then userinfo and a refresh.

The client is registered with the CLI (``clients create --format json``), as an operator
would.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from tests.support.live_server import PASSWORD, LiveServer, run_live_server
from tests.support.pages import form
from tests.support.secrets import remember
from tests.support.server import CLI

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*deprecated.*"),
]

REDIRECT = "http://127.0.0.1:9/callback"  # never contacted: the test reads the redirect


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of this module only: the session's ``live_server`` would keep its SMTP
    server (and its log lines) alive through every later test of a run without browsers."""
    with run_live_server(tmp_path_factory.mktemp("authlib")) as server:
        yield server


def _clients(live: LiveServer, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [CLI, "clients", *args, "--format", "json"],
        cwd=live.server.tmp,
        env=live.server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


async def _browser_step(
    live: LiveServer, authorization_url: str, email: str, redirect: str = REDIRECT
) -> str:
    """What a browser does: follow our redirects, sign in with the form, come back. Returns
    the URL the client's redirect URI receives."""
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as browser:
        r = await browser.get(authorization_url)
        for _ in range(10):
            location = r.headers.get("location")
            assert location, (r.status_code, r.text[:300])
            target = urljoin(live.url, location)
            if target.startswith(redirect):
                return target
            r = await browser.get(target)
            if r.status_code == 200 and 'action="/login"' in r.text:
                fields = form(r.text, "/login")
                fields.update(email=email, password=PASSWORD)
                r = await browser.post("/login", data=fields, headers={"origin": live.url})
    raise AssertionError("the browser step did not come back to the client")


async def test_authlib_completes_code_with_pkce_and_verifies_our_id_token(
    provider: LiveServer,
) -> None:
    live_server = provider
    from authlib.common.security import generate_token
    from authlib.integrations.httpx_client import AsyncOAuth2Client
    from authlib.jose import JsonWebKey, jwt
    from authlib.oidc.core import CodeIDToken

    created = _clients(
        live_server,
        "create",
        "--name",
        "authlib app",
        "--type",
        "confidential",
        "--redirect-uri",
        REDIRECT,
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--scope",
        "openid profile email offline_access",
        "--first-party",
    )
    assert set(created) >= {"client_id", "client_secret"}
    remember(created["client_secret"])
    user = live_server.new_user()

    async with httpx.AsyncClient(timeout=30) as http:
        metadata = (await http.get(live_server.url + "/.well-known/openid-configuration")).json()
        jwks = (await http.get(metadata["jwks_uri"])).json()
    async with AsyncOAuth2Client(
        client_id=created["client_id"],
        client_secret=created["client_secret"],
        scope="openid profile email offline_access",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        timeout=30,
    ) as client:
        verifier = generate_token(48)
        nonce = secrets.token_urlsafe(16)
        url, state = client.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        callback = await _browser_step(live_server, url, user["email"])
        assert f"state={state}" in callback
        token = await client.fetch_token(
            metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier
        )
        remember(token["access_token"], token["refresh_token"], token["id_token"])

        claims = jwt.decode(
            token["id_token"],
            JsonWebKey.import_key_set(jwks),
            claims_cls=CodeIDToken,
            claims_options={"iss": {"essential": True, "value": metadata["issuer"]}},
            claims_params={
                "nonce": nonce,
                "client_id": created["client_id"],
                "access_token": token["access_token"],
            },
        )
        claims.validate(leeway=30)
        assert claims["sub"] == user["user"]["id"]
        assert claims.header["alg"] == "RS256"

        info = (await client.get(metadata["userinfo_endpoint"])).json()
        assert info["sub"] == claims["sub"]
        assert info["email"] == user["email"]

        refreshed = await client.refresh_token(metadata["token_endpoint"])
        remember(refreshed["access_token"], refreshed["refresh_token"])
        assert refreshed["refresh_token"] != token["refresh_token"]


async def _authlib_sub(
    live: LiveServer, metadata: dict[str, Any], created: dict[str, Any], redirect: str, email: str
) -> str:
    """authlib signs ``email`` in at ``created`` (code + PKCE); the ``sub`` of its ID token,
    checked to be the one UserInfo says."""
    from authlib.common.security import generate_token
    from authlib.integrations.httpx_client import AsyncOAuth2Client
    from authlib.jose import JsonWebKey, jwt
    from authlib.oidc.core import CodeIDToken

    async with httpx.AsyncClient(timeout=30) as http:
        jwks = (await http.get(metadata["jwks_uri"])).json()
    async with AsyncOAuth2Client(
        client_id=created["client_id"],
        client_secret=created["client_secret"],
        scope="openid email",
        redirect_uri=redirect,
        code_challenge_method="S256",
        timeout=30,
    ) as client:
        verifier = generate_token(48)
        nonce = secrets.token_urlsafe(16)
        url, _ = client.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        callback = await _browser_step(live, url, email, redirect)
        token = await client.fetch_token(
            metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier
        )
        remember(token["access_token"], token["id_token"])
        claims = jwt.decode(
            token["id_token"],
            JsonWebKey.import_key_set(jwks),
            claims_cls=CodeIDToken,
            claims_params={"nonce": nonce, "client_id": created["client_id"]},
        )
        claims.validate(leeway=30)
        info = (await client.get(metadata["userinfo_endpoint"])).json()
        assert info["sub"] == claims["sub"]
        return str(claims["sub"])


async def test_authlib_sees_pairwise_subjects_per_sector(provider: LiveServer) -> None:
    """OIDC Core 8.1 as a relying party sees it: clients registered with ``--subject-type
    pairwise`` on one redirect host (127.0.0.1) get the same ``sub`` for a user, a client on
    another host (localhost) another one, none of them the user's id, each stable."""
    redirects = {
        "a": "http://127.0.0.1:9/a/callback",
        "b": "http://127.0.0.1:9/b/callback",
        "other": "http://localhost:9/callback",
    }
    created = {
        name: _clients(
            provider,
            "create",
            "--name",
            f"pairwise {name}",
            "--type",
            "confidential",
            "--redirect-uri",
            uri,
            "--scope",
            "openid email",
            "--first-party",
            "--subject-type",
            "pairwise",
        )
        for name, uri in redirects.items()
    }
    for client in created.values():
        assert client["subject_type"] == "pairwise"
        remember(client["client_secret"])
    user = provider.new_user()
    async with httpx.AsyncClient(timeout=30) as http:
        metadata = (await http.get(provider.url + "/.well-known/openid-configuration")).json()
    assert "pairwise" in metadata["subject_types_supported"]
    subs = {
        name: await _authlib_sub(provider, metadata, created[name], uri, user["email"])
        for name, uri in redirects.items()
    }
    assert subs["a"] == subs["b"]
    assert subs["other"] != subs["a"]
    assert user["user"]["id"] not in subs.values()
    again = await _authlib_sub(provider, metadata, created["a"], redirects["a"], user["email"])
    assert again == subs["a"]
