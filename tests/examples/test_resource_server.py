"""examples/resource-server: access tokens of a live auth-service (PostgreSQL) validated from
the JWKS alone, by the example started with the one command of its README."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.examples import EXAMPLES, create_client, free_port, run_example
from tests.support.live_server import LiveServer, run_live_server
from tests.support.secrets import remember

AUDIENCE = "https://api.example.com"
TTL = 30  # the shortest access token lifetime the service allows


@dataclass
class World:
    live: LiveServer
    api: str  # the resource server's base URL
    reader: dict[str, str]  # notes:read, audience AUDIENCE
    writer: dict[str, str]  # notes:write only, audience AUDIENCE
    early_token: str  # issued when the module started, to be seen expired at its end

    def token(self, client: dict[str, str], **form: str) -> str:
        r = httpx.post(
            f"{self.live.url}/oauth2/token",
            data={"grant_type": "client_credentials", **form},
            auth=(client["client_id"], client["client_secret"]),
        )
        assert r.status_code == 200, r.text
        remember(r.json()["access_token"])
        return str(r.json()["access_token"])

    def get(self, path: str, token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(self.api + path, headers=headers)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("resource-server")
    scopes = json.dumps({"notes:read": "Read your notes", "notes:write": "Write notes"})
    with run_live_server(
        tmp, AUTH_OAUTH__SCOPES=scopes, AUTH_OAUTH__ACCESS_TOKEN_TTL_SECONDS=str(TTL)
    ) as live:
        common = ["--type", "confidential", "--grant-type", "client_credentials"]
        reader = create_client(
            live, tmp, "--name", "reader", *common, "--scope", "notes:read", "--resource", AUDIENCE
        )
        writer = create_client(
            live, tmp, "--name", "writer", *common, "--scope", "notes:write", "--resource", AUDIENCE
        )
        port = free_port()
        argv = [str(EXAMPLES / "resource-server" / "app.py"), "--issuer", live.url]
        argv += ["--audience", AUDIENCE, "--port", str(port), "--refetch-interval", "2"]
        with run_example("resource-server", argv, tmp, port, "/health") as api:
            world = World(live, api, reader, writer, "")
            world.early_token = world.token(reader, resource=AUDIENCE)
            yield world


def challenge(r: httpx.Response) -> str:
    assert r.headers.get("www-authenticate", "").startswith("Bearer "), r.headers
    return r.headers["www-authenticate"]


def test_a_valid_token_with_the_scope_reads_the_notes(world: World) -> None:
    token = world.token(world.reader, resource=AUDIENCE, scope="notes:read")
    r = world.get("/api/notes", token)
    assert r.status_code == 200, r.text
    assert r.json()["owner"] == world.reader["client_id"]
    assert world.get("/api/me", token).json()["sub"] == world.reader["client_id"]


def test_no_token_is_401_with_a_challenge_and_no_error_code(world: World) -> None:
    r = world.get("/api/notes", None)
    assert r.status_code == 401
    assert "error=" not in challenge(r)


def test_a_token_without_the_scope_is_403_insufficient_scope(world: World) -> None:
    r = world.get("/api/notes", world.token(world.writer, resource=AUDIENCE))
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in challenge(r)
    assert 'scope="notes:read"' in challenge(r)
    assert world.get("/api/me", world.token(world.writer, resource=AUDIENCE)).status_code == 200


def test_a_token_for_another_audience_is_401(world: World) -> None:
    token = world.token(world.reader)  # no resource: the audience is the client itself
    r = world.get("/api/notes", token)
    assert r.status_code == 401
    assert 'error="invalid_token"' in challenge(r)
    assert "aud" in r.json()["error_description"]


def _segment(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _decode(segment: str) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(segment + "=="))
    return decoded


@pytest.mark.parametrize("part", ["payload", "signature", "alg-none", "typ", "hs256"])
def test_a_tampered_token_is_401(world: World, part: str) -> None:
    token = world.token(world.reader, resource=AUDIENCE)
    header, payload, signature = token.split(".")
    if part == "payload":
        claims = _decode(payload)
        claims["scope"] = "notes:read notes:write"
        payload = _segment(claims)
    elif part == "signature":
        signature = ("A" if signature[0] != "A" else "B") + signature[1:]
    elif part == "alg-none":
        header, signature = _segment({**_decode(header), "alg": "none"}), ""
    elif part == "typ":  # an ID token or any other JWT of the issuer is no access token
        header = _segment({**_decode(header), "typ": "JWT"})
    else:  # the public key used as an HMAC secret: refused by the allow-list
        header = _segment({**_decode(header), "alg": "HS256"})
    r = world.get("/api/notes", f"{header}.{payload}.{signature}")
    assert r.status_code == 401, r.text
    assert 'error="invalid_token"' in challenge(r)


def test_an_unknown_kid_refetches_the_jwks_once_then_waits(world: World) -> None:
    token = world.token(world.reader, resource=AUDIENCE)
    assert world.get("/api/me", token).status_code == 200  # the JWKS is in the cache
    fetches = httpx.get(world.api + "/health").json()["jwks_fetches"]
    time.sleep(2.1)  # past --refetch-interval 2 since the last fetch
    token = world.token(world.reader, resource=AUDIENCE)
    header, payload, signature = token.split(".")
    forged = _segment({**_decode(header), "kid": "rotated-away"}) + f".{payload}.{signature}"
    first = world.get("/api/notes", forged)
    second = world.get("/api/notes", forged)
    assert first.status_code == second.status_code == 401
    assert "unknown signing key" in first.json()["error_description"]
    # Refetched for the first unknown kid, not again within the refetch interval.
    after = httpx.get(world.api + "/health").json()["jwks_fetches"]
    assert after == fetches + 1
    # A known kid is served from the cache: no fetch.
    assert world.get("/api/notes", token).status_code == 200
    assert httpx.get(world.api + "/health").json()["jwks_fetches"] == after


def test_an_expired_token_is_401(world: World) -> None:
    """Last: waits for the token issued at the module's start to expire (TTL 30 s)."""
    exp = int(str(_decode(world.early_token.split(".")[1])["exp"]))
    time.sleep(max(0.0, exp - time.time() + 1.5))
    r = world.get("/api/notes", world.early_token)
    assert r.status_code == 401
    assert 'error="invalid_token"' in challenge(r)
    assert "expired" in r.json()["error_description"]


def test_the_readme_gives_the_command_the_test_runs() -> None:
    readme = (EXAMPLES / "resource-server" / "README.md").read_text()
    assert "examples/resource-server/app.py --issuer" in readme
    assert Path(EXAMPLES / "README.md").read_text().count("resource-server") >= 1
