"""The token endpoint on SQLite and PostgreSQL: the code exchange's checks, refresh rotation
and reuse detection, client_credentials, client authentication (basic with form-urlencoded
credentials, post, none) and secret rotation, as RFC 6749 section 5.2 errors."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from auth_service.audit.context import RequestContext
from tests.support import oauth
from tests.support.api import Api


async def _code(
    api: Api, registered: oauth.Registered, **extra: str
) -> tuple[oauth.Authorization, str]:
    email = await oauth.new_user(api)
    auth = oauth.authorization(registered, **extra)
    return auth, oauth.callback(await oauth.authorize(api, auth, email=email))["code"]


def _exchange(
    auth: oauth.Authorization, issued: str, registered: oauth.Registered, **change: str
) -> dict[str, str]:
    """The token request that redeems the ``issued`` code (with ``change`` applied)."""
    return {
        "grant_type": "authorization_code",
        "code": issued,
        "redirect_uri": registered.redirect_uri,
        "code_verifier": auth.verifier,
        **change,
    }


def _oauth_error(r, status: int, error: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"] == error, r.json()
    assert r.headers["cache-control"] == "no-store"


async def _introspect(api: Api, registered: oauth.Registered, token: str) -> dict[str, object]:
    r = await api.client.post("/oauth2/introspect", data={"token": token}, headers=registered.basic)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


# ---- the code exchange ---------------------------------------------------------------------


async def test_a_code_is_single_use_and_a_replay_revokes_what_it_issued(api: Api) -> None:
    registered = await oauth.client(api)
    auth, code = await _code(api, registered)
    data = _exchange(auth, code, registered)
    first = await oauth.token(api, registered, **data)
    assert first.status_code == 200
    tokens = first.json()
    assert (await _introspect(api, registered, tokens["access_token"]))["active"] is True
    _oauth_error(await oauth.token(api, registered, **data), 400, "invalid_grant")
    # What the code issued is revoked: the refresh token and the access token's grant.
    assert (await _introspect(api, registered, tokens["access_token"]))["active"] is False
    assert (await _introspect(api, registered, tokens["refresh_token"]))["active"] is False
    r = await oauth.token(
        api, registered, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    _oauth_error(r, 400, "invalid_grant")
    events, _ = await api.services.audit.query(event_type="oauth.code_replayed")
    assert events


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"redirect_uri": "https://app.example.com/other"}, "invalid_grant"),
        ({"redirect_uri": ""}, "invalid_grant"),  # sent at authorization: required here
        ({"code_verifier": ""}, "invalid_grant"),
        ({"code_verifier": "x" * 43}, "invalid_grant"),
        ({"code": "not-a-code"}, "invalid_grant"),
        ({"code": "x" * 5000}, "invalid_request"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        # Supported (RFC 8628) but not registered for this client.
        ({"grant_type": "urn:ietf:params:oauth:grant-type:device_code"}, "unauthorized_client"),
    ],
)
async def test_the_exchange_refuses_a_mismatch(
    api: Api, change: dict[str, str], error: str
) -> None:
    registered = await oauth.client(api)
    auth, code = await _code(api, registered)
    data = _exchange(auth, code, registered, **change)
    _oauth_error(await oauth.token(api, registered, **data), 400, error)


async def test_a_wrong_verifier_burns_the_code(api: Api) -> None:
    registered = await oauth.client(api)
    auth, code = await _code(api, registered)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": registered.redirect_uri,
    }
    _oauth_error(
        await oauth.token(api, registered, **data, code_verifier="a" * 43), 400, "invalid_grant"
    )
    _oauth_error(
        await oauth.token(api, registered, **data, code_verifier=auth.verifier),
        400,
        "invalid_grant",
    )


async def test_a_verifier_for_a_code_without_a_challenge_is_refused(api: Api) -> None:
    """Codes always carry a challenge here; a stored one without (as an older server might
    have issued) must not be redeemed with a made-up verifier."""
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    client = await api.services.oauth.clients.get(registered.client_id)
    user = (await api.services.accounts.users.list_users(email=email))[0][0]
    code = await api.services.oauth.authorize._codes.issue(
        client_pk=client.pk,
        tenant_id=client.tenant_id,
        user_id=user.id,
        request={
            "redirect_uri": registered.redirect_uri,
            "redirect_uri_sent": True,
            "scope": "openid",
            "nonce": None,
            "code_challenge": None,
            "resources": [],
            "auth_time": user.created_at.isoformat(),
            "acr": "aal1",
            "amr": ["pwd"],
            "sid": None,
        },
        ttl_seconds=60,
    )
    r = await oauth.token(
        api,
        registered,
        grant_type="authorization_code",
        code=code,
        redirect_uri=registered.redirect_uri,
        code_verifier="v" * 43,
    )
    _oauth_error(r, 400, "invalid_grant")


async def test_a_code_of_another_client_is_refused(api: Api) -> None:
    a = await oauth.client(api)
    b = await oauth.client(api)
    auth, code = await _code(api, a)
    data = _exchange(auth, code, a)
    _oauth_error(await oauth.token(api, b, **data), 400, "invalid_grant")
    assert (await oauth.token(api, a, **data)).status_code == 200  # not spent by b


async def test_duplicate_parameters_are_invalid_request(api: Api) -> None:
    registered = await oauth.client(api)
    body = "grant_type=client_credentials&grant_type=client_credentials"
    r = await api.client.post(
        "/oauth2/token",
        content=body,
        headers={**registered.basic, "content-type": "application/x-www-form-urlencoded"},
    )
    _oauth_error(r, 400, "invalid_request")
    r = await api.client.post("/oauth2/token", json={"grant_type": "client_credentials"})
    _oauth_error(r, 400, "invalid_request")


# ---- refresh -------------------------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_grant(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    _auth, tokens = await oauth.code_tokens(api, registered, email)
    first = tokens["refresh_token"]
    r = await oauth.token(api, registered, grant_type="refresh_token", refresh_token=first)
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first
    claims = await oauth.verify_id_token(api, second["id_token"], registered.client_id)
    assert "nonce" not in claims
    # Narrower scope is fine, wider is not (and costs nothing).
    r = await oauth.token(
        api,
        registered,
        grant_type="refresh_token",
        refresh_token=second["refresh_token"],
        scope="openid admin",
    )
    _oauth_error(r, 400, "invalid_scope")
    r = await oauth.token(
        api,
        registered,
        grant_type="refresh_token",
        refresh_token=second["refresh_token"],
        scope="openid",
    )
    assert r.status_code == 200, r.text
    third = r.json()
    assert third["scope"] == "openid"
    # The spent first token again: reuse, the whole grant ends.
    _oauth_error(
        await oauth.token(api, registered, grant_type="refresh_token", refresh_token=first),
        400,
        "invalid_grant",
    )
    r = await oauth.token(
        api, registered, grant_type="refresh_token", refresh_token=third["refresh_token"]
    )
    _oauth_error(r, 400, "invalid_grant")
    assert (await _introspect(api, registered, third["access_token"]))["active"] is False


async def test_a_refresh_token_of_client_a_used_by_client_b(api: Api) -> None:
    a = await oauth.client(api)
    b = await oauth.client(api)
    email = await oauth.new_user(api)
    _auth, tokens = await oauth.code_tokens(api, a, email)
    refresh = tokens["refresh_token"]
    _oauth_error(
        await oauth.token(api, b, grant_type="refresh_token", refresh_token=refresh),
        400,
        "invalid_grant",
    )
    # Neither spent nor rotated: a's next refresh works, and no reuse was detected.
    r = await oauth.token(api, a, grant_type="refresh_token", refresh_token=refresh)
    assert r.status_code == 200, r.text
    # The first-party API does not take it either, nor the token endpoint an API token.
    api_refresh = await api.client.post(
        "/v1/auth/refresh", json={"refresh_token": r.json()["refresh_token"]}
    )
    assert api_refresh.status_code == 401
    user = await api.user()
    r2 = await oauth.token(api, a, grant_type="refresh_token", refresh_token=user["refresh_token"])
    _oauth_error(r2, 400, "invalid_grant")
    assert (
        await api.client.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]})
    ).status_code == 200


async def test_no_offline_access_means_no_refresh_token(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    _auth, tokens = await oauth.code_tokens(api, registered, email, scope="openid profile")
    assert "refresh_token" not in tokens


# ---- client_credentials ------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings_overrides", [{"oauth": {"scopes": {"reports:read": "Read reports"}}}], indirect=True
)
async def test_client_credentials(api: Api) -> None:
    registered = await oauth.client(
        api,
        grant_types=("client_credentials",),
        scope="reports:read openid",
        redirect_uris=(),
        resources=("https://api.example.com/",),
    )
    r = await oauth.token(api, registered, grant_type="client_credentials")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "reports:read"  # user scopes are never the client's own
    assert "refresh_token" not in body
    assert "id_token" not in body
    info = await _introspect(api, registered, body["access_token"])
    assert info["active"] is True
    assert info["sub"] == registered.client_id
    assert info["aud"] == registered.client_id
    r = await oauth.token(
        api, registered, grant_type="client_credentials", resource="https://api.example.com/"
    )
    assert (await _introspect(api, registered, r.json()["access_token"]))[
        "aud"
    ] == "https://api.example.com/"
    _oauth_error(
        await oauth.token(api, registered, grant_type="client_credentials", scope="openid"),
        400,
        "invalid_scope",
    )
    _oauth_error(
        await oauth.token(
            api, registered, grant_type="client_credentials", resource="https://evil.example/"
        ),
        400,
        "invalid_target",
    )
    _oauth_error(
        await oauth.token(api, registered, grant_type="authorization_code", code="x"),
        400,
        "unauthorized_client",
    )


# ---- client authentication -----------------------------------------------------------------


def _basic(client_id: str, secret: str, *, encode: bool) -> dict[str, str]:
    if encode:  # RFC 6749 section 2.3.1: form-urlencode, then base64 (strict clients do)
        client_id, secret = (
            quote(client_id, safe="").replace("-", "%2D"),
            quote(secret, safe="").replace("-", "%2D"),
        )
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def _confidential_with_dash(api: Api) -> oauth.Registered:
    for _ in range(50):
        registered = await oauth.client(
            api, grant_types=("client_credentials",), scope="", redirect_uris=()
        )
        assert registered.secret
        if "-" in registered.client_id + registered.secret:
            return registered
    raise AssertionError("no client id or secret with a dash")


@pytest.mark.parametrize("encode", [True, False])
async def test_client_secret_basic_decodes_form_urlencoded_credentials(
    api: Api, encode: bool
) -> None:
    registered = await _confidential_with_dash(api)
    assert registered.secret
    headers = _basic(registered.client_id, registered.secret, encode=encode)
    r = await api.client.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers=headers
    )
    assert r.status_code == 200, r.text


async def test_client_authentication_failures_are_401_invalid_client(api: Api) -> None:
    registered = await oauth.client(
        api, grant_types=("client_credentials",), scope="", redirect_uris=()
    )
    assert registered.secret
    cases = [
        {"headers": _basic(registered.client_id, "wrong", encode=False)},
        {"headers": _basic("nobody", registered.secret, encode=False)},
        {"headers": {"Authorization": "Basic !!!"}},
        {"data": {"client_id": registered.client_id}},  # "none" for a confidential client
        {"data": {"client_id": registered.client_id, "client_secret": "wrong"}},
        {},
    ]
    for case in cases:
        data = {"grant_type": "client_credentials", **case.get("data", {})}
        r = await api.client.post("/oauth2/token", data=data, headers=case.get("headers", {}))
        _oauth_error(r, 401, "invalid_client")
        assert r.headers["www-authenticate"].startswith("Basic realm=")
    # Two methods at once are refused; the registered method is the one that counts.
    data = {
        "grant_type": "client_credentials",
        "client_id": registered.client_id,
        "client_secret": registered.secret,
    }
    _oauth_error(
        await api.client.post("/oauth2/token", data=data, headers=registered.basic),
        400,
        "invalid_request",
    )
    _oauth_error(await api.client.post("/oauth2/token", data=data), 401, "invalid_client")


async def test_secret_rotation_keeps_the_old_secret_until_the_overlap_ends(api: Api) -> None:
    registered = await oauth.client(
        api, grant_types=("client_credentials",), scope="", redirect_uris=()
    )
    clients = api.services.oauth.clients
    rotation = await clients.rotate_secret(
        registered.client_id, RequestContext(), overlap_seconds=3600
    )
    new = oauth.Registered(registered.client_id, rotation.secret)
    for who in (registered, new):
        assert (await oauth.token(api, who, grant_type="client_credentials")).status_code == 200
    # Rotating again with no overlap ends every older secret now.
    latest = await clients.rotate_secret(registered.client_id, RequestContext(), overlap_seconds=0)
    for who in (registered, new):
        _oauth_error(
            await oauth.token(api, who, grant_type="client_credentials"), 401, "invalid_client"
        )
    newest = oauth.Registered(registered.client_id, latest.secret)
    assert (await oauth.token(api, newest, grant_type="client_credentials")).status_code == 200


async def test_public_clients_use_none_and_pkce(api: Api) -> None:
    registered = await oauth.client(api, client_type="public")
    assert registered.secret is None
    email = await oauth.new_user(api)
    _auth, tokens = await oauth.code_tokens(api, registered, email)
    assert tokens["refresh_token"]
    r = await oauth.token(
        api, registered, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert r.status_code == 200, r.text
