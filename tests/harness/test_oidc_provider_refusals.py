"""What the provider refuses, tried over HTTP against the live server (httpx; the sign-in and
consent forms posted as a browser would): the attacks and mistakes strict clients guard
against, which the provider must not let through on its side. Beside the openid-client and
oauth4webapi flows of the other test_oidc_* files, and marked ``harness`` with them."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from auth_service.db.base import utcnow
from auth_service.security.random import token_digest
from tests.support.live_server import LiveServer
from tests.support.oauth import pkce
from tests.support.oidc_harness import (
    USER_SCOPES,
    ClientEndpoint,
    Clients,
    FormBrowser,
    Registered,
    redirected_to,
)
from tests.support.secrets import remember

pytestmark = pytest.mark.harness

OVERSIZE = "A" * 9000  # over the 8 KiB any token of ours may be


@pytest.fixture
def user(live_server: LiveServer) -> dict[str, Any]:
    return live_server.new_user()


@pytest.fixture
def visitor(live_server: LiveServer, user: dict[str, Any]) -> Iterator[FormBrowser]:
    """``user``'s browser (httpx posting the forms; ``browser`` is Chromium's fixture)."""
    with FormBrowser(live_server, user) as visitor:
        yield visitor


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as client:
        yield client


def _request(
    client: Registered, redirect_uri: str, **extra: str | None
) -> tuple[dict[str, str], str]:
    """An authorization request (PKCE S256, state, nonce); ``extra`` adds or, with None,
    removes parameters. With its verifier."""
    verifier, challenge = pkce()
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "scope": USER_SCOPES,
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return {k: v for k, v in params.items() if v is not None}, verifier


def _code(
    visitor: FormBrowser, client: Registered, redirect_uri: str, **extra: str | None
) -> tuple[str, str, dict[str, str]]:
    """A code for ``client`` through the sign-in (and consent) pages: code, verifier, request."""
    params, verifier = _request(client, redirect_uri, **extra)
    answer = redirected_to(visitor.visit("/oauth2/authorize", params), redirect_uri)
    assert answer.get("state") == params["state"], answer
    assert "code" in answer, answer
    return answer["code"], verifier, params


def _basic(client: Registered) -> dict[str, str]:
    assert client.client_secret
    raw = f"{client.client_id}:{client.client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def _token(http: httpx.Client, client: Registered, **data: str) -> httpx.Response:
    r = http.post("/oauth2/token", data=data, headers=_basic(client))
    if r.status_code == 200:
        remember(*(v for k, v in r.json().items() if k.endswith("_token")))
    return r


def _exchange(
    http: httpx.Client, client: Registered, code: str, verifier: str, redirect_uri: str
) -> httpx.Response:
    return _token(
        http,
        client,
        grant_type="authorization_code",
        code=code,
        code_verifier=verifier,
        redirect_uri=redirect_uri,
    )


def _refused(r: httpx.Response, status: int, error: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    assert r.json()["error"] == error, r.text


def _introspect(http: httpx.Client, client: Registered, token: str) -> dict[str, Any]:
    r = http.post("/oauth2/introspect", data={"token": token}, headers=_basic(client))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _claims(token: str) -> dict[str, Any]:
    """A JWT's payload as sent (no verification: what is and is not in it)."""
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


def _shown_not_redirected(r: httpx.Response) -> None:
    assert r.status_code == 400, (r.status_code, r.headers.get("location"))
    assert "location" not in r.headers
    assert r.headers["content-type"].startswith("text/html")


# ---- nonce ---------------------------------------------------------------------------------


def test_the_nonce_comes_back_exactly_when_sent_and_is_never_null(
    http: httpx.Client, visitor: FormBrowser, clients: Clients
) -> None:
    client = clients.register("refusals: nonce")
    uri = clients.endpoint.redirect_uri
    odd = "n-0S6_WzA2Mj ü+/=" + secrets.token_urlsafe(8)
    code, verifier, _ = _code(visitor, client, uri, nonce=odd)
    sent = _exchange(http, client, code, verifier, uri).json()
    assert _claims(sent["id_token"])["nonce"] == odd
    for missing in (None, ""):  # not sent, or sent empty (RFC 6749 3.1: as if omitted)
        code, verifier, _ = _code(visitor, client, uri, nonce=missing)
        tokens = _exchange(http, client, code, verifier, uri).json()
        assert "nonce" not in _claims(tokens["id_token"])
    refreshed = _token(
        http, client, grant_type="refresh_token", refresh_token=sent["refresh_token"]
    ).json()
    assert "nonce" not in _claims(refreshed["id_token"])


# ---- redirect URIs -------------------------------------------------------------------------


def _unregistered(endpoint: ClientEndpoint) -> list[str]:
    uri = endpoint.redirect_uri
    host_port = endpoint.origin.removeprefix("http://")
    return [
        "https://evil.example/callback",
        uri + "/more",
        uri + "x",
        uri + "/",
        uri + "?next=https://evil.example/",
        uri + "#fragment",
        uri.replace("/callback", "/CALLBACK"),
        uri.replace("127.0.0.1", "localhost"),
        uri.replace("http://", "https://"),
        f"http://{host_port}@evil.example/callback",
        f"http://evil.example@{host_port}/callback",
        f"http://127.0.0.1.evil.example/{uri.rsplit('/', 1)[1]}",
        "//evil.example/callback",
        "javascript:alert(1)",
    ]


def test_errors_never_go_to_an_unregistered_redirect_uri(
    http: httpx.Client, visitor: FormBrowser, clients: Clients
) -> None:
    client = clients.register("refusals: redirect URIs")
    for uri in _unregistered(clients.endpoint):
        # A valid request, and one with another error besides: shown, never redirected.
        for extra in ({}, {"code_challenge_method": "plain"}, {"scope": "admin"}):
            params, _ = _request(client, uri, **extra)
            _shown_not_redirected(http.get("/oauth2/authorize", params=params))
        # Signed in too: nothing goes to it.
        params, _ = _request(client, uri)
        _shown_not_redirected(visitor.visit("/oauth2/authorize", params))
    params, _ = _request(client, clients.endpoint.redirect_uri, client_id="no-such-client")
    _shown_not_redirected(http.get("/oauth2/authorize", params=params))
    params, _ = _request(client, clients.endpoint.redirect_uri)
    del params["redirect_uri"]  # required of an OpenID request: nowhere to send the error
    _shown_not_redirected(http.get("/oauth2/authorize", params=params))


# ---- PKCE ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"code_challenge_method": "plain"}, id="plain"),
        pytest.param({"code_challenge_method": None}, id="no-method"),
        pytest.param({"code_challenge": None}, id="no-challenge"),
        pytest.param({"code_challenge": None, "code_challenge_method": None}, id="no-pkce"),
        pytest.param({"code_challenge": "too-short"}, id="malformed"),
        pytest.param({"code_challenge_method": "s256"}, id="lowercase-method"),
    ],
)
def test_pkce_must_be_s256(
    visitor: FormBrowser, clients: Clients, change: dict[str, str | None]
) -> None:
    client = clients.register("refusals: PKCE")
    uri = clients.endpoint.redirect_uri
    params, _ = _request(client, uri, **change)
    if change.get("code_challenge_method") == "plain":
        params["code_challenge"] = "x" * 43
    answer = redirected_to(visitor.visit("/oauth2/authorize", params), uri)
    assert answer["error"] == "invalid_request", answer
    assert answer["state"] == params["state"]
    assert answer["iss"] == visitor.live.url
    assert "code" not in answer
    assert visitor.pages == []  # refused before anyone signs in


async def _client_row(live: LiveServer, client_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(live.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT id, tenant_id FROM oauth_clients WHERE client_id = $1", client_id
        )
    finally:
        await conn.close()
    assert row is not None
    return row


async def test_a_code_verifier_for_a_code_without_a_challenge_is_refused(
    live_server: LiveServer, http: httpx.Client, clients: Clients, user: dict[str, Any]
) -> None:
    """The authorization endpoint issues no code without a challenge (above); a code that has
    none anyway (an older release's, a row written by hand) is refused with or without a
    verifier: client and server disagreeing on PKCE is a downgrade."""
    client = clients.register("refusals: no challenge")
    uri = clients.endpoint.redirect_uri
    row = await _client_row(live_server, client.client_id)
    codes = [secrets.token_urlsafe(32) for _ in range(2)]
    request = {
        "redirect_uri": uri,
        "redirect_uri_sent": True,
        "scope": "openid",
        "nonce": None,
        "code_challenge": None,
        "resources": [],
        "auth_time": utcnow().isoformat(),
        "acr": "aal1",
        "amr": ["pwd"],
        "sid": None,
    }
    conn = await asyncpg.connect(live_server.database_url)
    try:
        for code in codes:
            await conn.execute(
                "INSERT INTO oauth_authorization_codes (id, tenant_id, code_hash, client_pk,"
                " user_id, request, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6,"
                " $7, $8)",
                uuid.uuid4(),
                row["tenant_id"],
                token_digest(code),
                row["id"],
                uuid.UUID(user["user"]["id"]),
                json.dumps(request),
                utcnow().replace(tzinfo=None),
                (utcnow() + timedelta(seconds=60)).replace(tzinfo=None),
            )
    finally:
        await conn.close()
    verifier, _ = pkce()
    with_verifier = _exchange(http, client, codes[0], verifier, uri)
    _refused(with_verifier, 400, "invalid_grant")
    assert "without code_challenge" in with_verifier.json()["error_description"]
    without = _token(http, client, grant_type="authorization_code", code=codes[1], redirect_uri=uri)
    _refused(without, 400, "invalid_grant")


# ---- the code at the token endpoint --------------------------------------------------------


def test_a_different_redirect_uri_at_the_token_endpoint_is_refused(
    http: httpx.Client, visitor: FormBrowser, clients: Clients
) -> None:
    endpoint = clients.endpoint
    client = clients.register(
        "refusals: two redirect URIs",
        redirect_uris=(endpoint.redirect_uri, endpoint.other_redirect_uri),
    )
    code, verifier, _ = _code(visitor, client, endpoint.redirect_uri)
    _refused(
        _exchange(http, client, code, verifier, endpoint.other_redirect_uri), 400, "invalid_grant"
    )
    # The failed attempt spent the code: the right URI does not bring it back.
    _refused(_exchange(http, client, code, verifier, endpoint.redirect_uri), 400, "invalid_grant")
    code, verifier, _ = _code(visitor, client, endpoint.redirect_uri)
    omitted = _token(
        http, client, grant_type="authorization_code", code=code, code_verifier=verifier
    )
    _refused(omitted, 400, "invalid_grant")


def test_a_code_used_twice_is_refused_and_what_it_issued_is_revoked(
    http: httpx.Client, visitor: FormBrowser, clients: Clients
) -> None:
    client = clients.register("refusals: code replay")
    uri = clients.endpoint.redirect_uri
    code, verifier, _ = _code(visitor, client, uri)
    first = _exchange(http, client, code, verifier, uri)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert _introspect(http, client, tokens["access_token"])["active"] is True
    replay = _exchange(http, client, code, verifier, uri)
    _refused(replay, 400, "invalid_grant")
    assert _introspect(http, client, tokens["access_token"]) == {"active": False}
    assert _introspect(http, client, tokens["refresh_token"]) == {"active": False}
    refresh = _token(
        http, client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    _refused(refresh, 400, "invalid_grant")
    userinfo = http.get(
        "/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 401
    assert 'error="invalid_token"' in userinfo.headers["www-authenticate"]


def test_a_refresh_token_of_client_a_is_refused_to_client_b(
    http: httpx.Client, visitor: FormBrowser, clients: Clients
) -> None:
    a = clients.register("refusals: client A")
    b = clients.register("refusals: client B")
    uri = clients.endpoint.redirect_uri
    code, verifier, _ = _code(visitor, a, uri)
    tokens = _exchange(http, a, code, verifier, uri).json()
    stolen = _token(http, b, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    _refused(stolen, 400, "invalid_grant")
    assert _introspect(http, b, tokens["refresh_token"]) == {"active": False}
    assert _introspect(http, b, tokens["access_token"]) == {"active": False}
    # Neither spent nor rotated by B's attempt: A refreshes as before.
    own = _token(http, a, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert own.status_code == 200, own.text


# ---- client authentication -----------------------------------------------------------------


def test_introspection_and_revocation_need_client_authentication(
    http: httpx.Client, visitor: FormBrowser, clients: Clients
) -> None:
    client = clients.register("refusals: introspection")
    public = clients.register("refusals: public", client_type="public")
    uri = clients.endpoint.redirect_uri
    code, verifier, _ = _code(visitor, client, uri)
    token = _exchange(http, client, code, verifier, uri).json()["access_token"]
    wrong = Registered(client.client_id, "not-the-secret", client.alg)
    attempts: list[tuple[dict[str, str], dict[str, str]]] = [
        ({}, {}),
        ({}, {"client_id": client.client_id}),
        ({}, {"client_id": public.client_id}),
        (_basic(wrong), {}),
        ({"Authorization": f"Bearer {token}"}, {}),
        ({}, {"client_id": client.client_id, "client_secret": "not-the-secret"}),
    ]
    for path in ("/oauth2/introspect", "/oauth2/revoke"):
        for headers, credentials in attempts:
            r = http.post(path, data={"token": token, **credentials}, headers=headers)
            if path == "/oauth2/revoke" and credentials.get("client_id") == public.client_id:
                # A public client revokes its own tokens with its id alone (RFC 7009 section
                # 5): answered 200, and another client's token is left alone.
                assert r.status_code == 200, r.text
                continue
            _refused(r, 401, "invalid_client")
            assert r.headers["www-authenticate"].startswith("Basic "), r.headers
    # Nothing was revoked by any of them.
    assert _introspect(http, client, token)["active"] is True


# ---- JOSE ----------------------------------------------------------------------------------


def _forged(claims: dict[str, Any], **header: Any) -> str:
    """A JWT signed with a key of ours (the attacker's), announcing that key in its header."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    fields = {"kid": "attacker", "jwk": jwk, **header}
    fields = {k: v for k, v in fields.items() if v is not None}
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return jwt.encode(claims, pem, algorithm="ES256", headers=fields)


def _signed_in_id_token(
    http: httpx.Client, visitor: FormBrowser, client: Registered, uri: str
) -> str:
    code, verifier, _ = _code(visitor, client, uri)
    token: str = _exchange(http, client, code, verifier, uri).json()["id_token"]
    return token


def test_tokens_carrying_their_own_key_are_not_trusted(
    live_server: LiveServer, http: httpx.Client, visitor: FormBrowser, clients: Clients
) -> None:
    client = clients.register("refusals: jwk", alg="ES256")
    endpoint = clients.endpoint
    real = _claims(_signed_in_id_token(http, visitor, client, endpoint.redirect_uri))
    real_kid = jwt.get_unverified_header(
        _signed_in_id_token(http, visitor, client, endpoint.redirect_uri)
    )["kid"]
    jku = f"{endpoint.origin}/jwks.json"
    forgeries = [
        _forged(real),  # jwk
        _forged(real, kid=real_kid),  # jwk, with a kid of ours
        _forged(real, jwk=None, jku=jku),  # jku
        _forged(real, jwk=None, kid=real_kid, jku=jku),
        _forged(real, jwk=None, x5u=jku),
        jwt.encode(real, None, algorithm="none", headers={"kid": real_kid}),
    ]
    for hint in forgeries:
        # The hint is not believed: without it nobody knows the client, so the
        # post_logout_redirect_uri is refused and the session stays.
        r = visitor.http.get(
            "/oauth2/logout",
            params={
                "id_token_hint": hint,
                "post_logout_redirect_uri": endpoint.post_logout_redirect_uri,
                "state": "s",
            },
        )
        _shown_not_redirected(r)
        # With the client named, the user is asked: no sign-out on a forged word.
        r = visitor.http.get(
            "/oauth2/logout", params={"id_token_hint": hint, "client_id": client.client_id}
        )
        assert r.status_code == 200, r.status_code
        assert 'action="/oauth2/logout"' in r.text
        assert visitor.http.get("/account").status_code == 200  # still signed in
    access = {**real, "aud": client.client_id, "client_id": client.client_id, "scope": "openid"}
    access["jti"] = uuid.uuid4().hex
    for header in ({}, {"kid": real_kid}, {"jwk": None, "jku": jku}):
        token = _forged(access, typ="at+jwt", **header)
        r = http.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, r.text
        assert _introspect(http, client, token) == {"active": False}


def test_oversize_tokens_and_parameters_are_refused_cleanly(
    http: httpx.Client, visitor: FormBrowser, clients: Clients
) -> None:
    client = clients.register("refusals: oversize")
    bearer = {"Authorization": f"Bearer {OVERSIZE}"}
    r = http.get("/oauth2/userinfo", headers=bearer)
    assert r.status_code == 401, r.text
    assert "invalid_token" in r.headers["www-authenticate"]
    assert _introspect(http, client, OVERSIZE) == {"active": False}
    assert http.post("/oauth2/revoke", data={"token": OVERSIZE}, headers=_basic(client)).is_success
    for data in (
        {"grant_type": "refresh_token", "refresh_token": OVERSIZE},
        {"grant_type": "authorization_code", "code": OVERSIZE, "code_verifier": "v" * 43},
    ):
        r = _token(http, client, **data)
        assert r.status_code == 400
        assert r.json()["error"] in ("invalid_request", "invalid_grant")
    huge = _token(http, client, grant_type="refresh_token", refresh_token="A" * 2_000_000)
    assert huge.status_code in (400, 413), huge.status_code
    r = visitor.http.get("/oauth2/logout", params={"id_token_hint": OVERSIZE})
    assert r.status_code in (200, 400), r.status_code  # a page, never a 500
    # A state too long to send back: shown (a 400 page), the client is not answered with it.
    params, _ = _request(client, clients.endpoint.redirect_uri, state="s" * 5000)
    _shown_not_redirected(visitor.visit("/oauth2/authorize", params))
    params, _ = _request(client, clients.endpoint.redirect_uri, nonce="n" * 600)
    answer = redirected_to(
        visitor.visit("/oauth2/authorize", params), clients.endpoint.redirect_uri
    )
    assert answer["error"] == "invalid_request"


# ---- max_age -------------------------------------------------------------------------------


def test_max_age_is_honoured(visitor: FormBrowser, clients: Clients) -> None:
    client = clients.register("refusals: max_age")
    uri = clients.endpoint.redirect_uri
    _code(visitor, client, uri)  # signed in (and consented)
    assert visitor.pages == ["login", "consent"]
    _code(visitor, client, uri, max_age="3600")
    assert visitor.pages == []
    _code(visitor, client, uri, max_age="0")  # no sign-in is young enough
    assert visitor.pages == ["login"]
    params, _ = _request(client, uri, max_age="0", prompt="none")
    answer = redirected_to(visitor.visit("/oauth2/authorize", params), uri)
    assert answer["error"] == "login_required"
    for bad in ("-1", "abc", "1e3", "3600.5", " 60", "99999999999999999999"):
        params, _ = _request(client, uri, max_age=bad)
        answer = redirected_to(visitor.visit("/oauth2/authorize", params), uri)
        assert answer["error"] == "invalid_request", (bad, answer)
