"""Introspection (RFC 7662), revocation (RFC 7009), tokens we refuse to trust (key material
in the header, oversize), RP-initiated logout, the admin API for clients and dynamic
registration, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tests.support import oauth
from tests.support.api import Api
from tests.support.pages import ORIGIN, form

ADMIN_PASSWORD = "Tr0ub4dor&3-horse"


async def _tokens(api: Api, registered: oauth.Registered) -> dict[str, Any]:
    email = await oauth.new_user(api)
    _auth, tokens = await oauth.code_tokens(api, registered, email)
    return tokens


async def _post(api: Api, path: str, registered: oauth.Registered | None, **data: str):  # type: ignore[no-untyped-def]
    headers = registered.basic if registered else {}
    return await api.client.post(path, data=data, headers=headers)


# ---- introspection and revocation ------------------------------------------------------------


async def test_introspection_needs_client_authentication(api: Api) -> None:
    registered = await oauth.client(api)
    tokens = await _tokens(api, registered)
    r = await _post(api, "/oauth2/introspect", None, token=tokens["access_token"])
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert "active" not in r.json()


async def test_public_clients_cannot_introspect(api: Api) -> None:
    public = await oauth.client(api, client_type="public")
    tokens = await _tokens(api, public)
    r = await api.client.post(
        "/oauth2/introspect",
        data={"token": tokens["access_token"], "client_id": public.client_id},
    )
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    doc = (await api.client.get("/.well-known/openid-configuration")).json()
    assert "none" not in doc["introspection_endpoint_auth_methods_supported"]


async def test_introspection_answers_only_the_owner(api: Api) -> None:
    a = await oauth.client(api)
    b = await oauth.client(api)
    tokens = await _tokens(api, a)
    mine = (await _post(api, "/oauth2/introspect", a, token=tokens["access_token"])).json()
    assert mine["active"] is True
    assert mine["client_id"] == a.client_id
    assert mine["scope"] == "openid profile email offline_access"
    assert mine["token_type"] == "Bearer"
    refresh = (
        await _post(
            api,
            "/oauth2/introspect",
            a,
            token=tokens["refresh_token"],
            token_type_hint="refresh_token",
        )
    ).json()
    assert refresh["active"] is True
    assert refresh["token_type"] == "refresh_token"
    for token in (tokens["access_token"], tokens["refresh_token"], tokens["id_token"], "garbage"):
        assert (await _post(api, "/oauth2/introspect", b, token=token)).json() == {"active": False}
    # A hint is only a hint.
    wrong_hint = await _post(
        api, "/oauth2/introspect", a, token=tokens["access_token"], token_type_hint="refresh_token"
    )
    assert wrong_hint.json()["active"] is True


async def test_revoking_a_refresh_token_ends_the_grant(api: Api) -> None:
    a = await oauth.client(api)
    b = await oauth.client(api)
    tokens = await _tokens(api, a)
    # Another client cannot revoke it (and learns nothing: 200 all the same).
    assert (await _post(api, "/oauth2/revoke", b, token=tokens["refresh_token"])).status_code == 200
    assert (await _post(api, "/oauth2/introspect", a, token=tokens["refresh_token"])).json()[
        "active"
    ]
    r = await _post(
        api, "/oauth2/revoke", a, token=tokens["refresh_token"], token_type_hint="access_token"
    )
    assert r.status_code == 200
    for token in (tokens["refresh_token"], tokens["access_token"]):
        assert (await _post(api, "/oauth2/introspect", a, token=token)).json() == {"active": False}
    r = await api.client.get("/oauth2/userinfo", headers=Api.bearer(tokens["access_token"]))
    assert r.status_code == 401


async def test_revoking_an_access_token_alone(api: Api) -> None:
    a = await oauth.client(api)
    tokens = await _tokens(api, a)
    assert (await _post(api, "/oauth2/revoke", a, token=tokens["access_token"])).status_code == 200
    assert (await _post(api, "/oauth2/introspect", a, token=tokens["access_token"])).json() == {
        "active": False
    }
    assert (
        await api.client.get("/oauth2/userinfo", headers=Api.bearer(tokens["access_token"]))
    ).status_code == 401
    # The grant lives on: the refresh token still works.
    r = await oauth.token(api, a, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert r.status_code == 200
    # Unknown tokens and repeated revocations are fine; a missing token is not.
    assert (await _post(api, "/oauth2/revoke", a, token="unknown")).status_code == 200
    assert (await _post(api, "/oauth2/revoke", a, token=tokens["access_token"])).status_code == 200
    r = await _post(api, "/oauth2/revoke", a)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


# ---- tokens we never trust -------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize("header", ["jwk", "jku", "x5u"])
async def test_a_token_carrying_its_own_key_is_refused(api: Api, header: str) -> None:
    """A token signed by an attacker's key, offering that key (or where to fetch it)."""
    registered = await oauth.client(api)
    real = await _tokens(api, registered)
    claims = jwt.decode(real["access_token"], options={"verify_signature": False})
    attacker = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(attacker.public_key()))
    kid = jwt.get_unverified_header(real["access_token"])["kid"]
    extra: dict[str, Any] = {
        "jwk": jwk,
        "jku": "https://evil.example/jwks.json",
        "x5u": "https://evil.example/cert.pem",
    }
    forged = jwt.encode(
        claims,
        attacker,
        algorithm="ES256",
        headers={"typ": "at+jwt", "kid": kid, header: extra[header]},
    )
    assert (await api.client.get("/oauth2/userinfo", headers=Api.bearer(forged))).status_code == 401
    assert (await _post(api, "/oauth2/introspect", registered, token=forged)).json() == {
        "active": False
    }
    # Signed by the attacker without the header: refused by the signature.
    plain = jwt.encode(claims, attacker, algorithm="ES256", headers={"typ": "at+jwt", "kid": kid})
    assert (await api.client.get("/oauth2/userinfo", headers=Api.bearer(plain))).status_code == 401


async def test_oversize_tokens_are_refused(api: Api) -> None:
    registered = await oauth.client(api)
    huge = "a" * 9000 + "." + "b" * 9000 + "." + "c" * 100
    r = await api.client.get("/oauth2/userinfo", headers=Api.bearer(huge))
    assert r.status_code == 401
    for token in (huge[:4000], huge):  # no token of ours, however long: inactive (RFC 7662 2.2)
        r = await _post(api, "/oauth2/introspect", registered, token=token)
        assert r.json() == {"active": False}
        # Nothing to revoke is no error either (RFC 7009 section 2.2).
        assert (await _post(api, "/oauth2/revoke", registered, token=token)).status_code == 200
    r = await oauth.token(api, registered, grant_type="refresh_token", refresh_token="r" * 4000)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


async def test_an_id_token_is_not_an_access_token(api: Api) -> None:
    registered = await oauth.client(api)
    tokens = await _tokens(api, registered)
    assert (
        await api.client.get("/oauth2/userinfo", headers=Api.bearer(tokens["id_token"]))
    ).status_code == 401
    # And OAuth access tokens are not tokens of the first-party API.
    assert (
        await api.client.get("/v1/users/me", headers=Api.bearer(tokens["access_token"]))
    ).status_code == 401


# ---- RP-initiated logout -----------------------------------------------------------------------


async def test_logout_with_a_hint_signs_out_and_returns_with_state(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    _auth, tokens = await oauth.code_tokens(api, registered, email, scope="openid")
    r = await api.client.get(
        "/oauth2/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": oauth.LOGOUT_REDIRECT,
            "state": "s-123",
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == oauth.LOGOUT_REDIRECT + "?state=s-123"
    assert (await api.client.get("/account")).headers["location"].startswith("/login")
    # The grant without offline_access ended with the sign-in it came from.
    info = await _post(api, "/oauth2/introspect", registered, token=tokens["access_token"])
    assert info.json() == {"active": False}


async def test_logout_without_a_hint_asks_first(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    await oauth.sign_in(api, email)
    params = {"client_id": registered.client_id, "post_logout_redirect_uri": oauth.LOGOUT_REDIRECT}
    r = await api.client.get("/oauth2/logout", params=params)
    assert r.status_code == 200
    assert ">Sign out<" in r.text
    assert (await api.client.get("/account")).status_code == 200  # still signed in
    fields = form(r.text, "/oauth2/logout")
    assert fields["confirm"] == "yes"
    forged = dict(fields, csrf_token="forged")
    assert (
        await api.client.post("/oauth2/logout", data=forged, headers={"origin": ORIGIN})
    ).status_code == 403
    done = await api.client.post("/oauth2/logout", data=fields, headers={"origin": ORIGIN})
    assert done.status_code == 303
    assert done.headers["location"] == oauth.LOGOUT_REDIRECT
    assert (await api.client.get("/account")).status_code == 303


async def test_logout_never_redirects_to_an_unregistered_uri(api: Api) -> None:
    registered = await oauth.client(api)
    for params in (
        {"post_logout_redirect_uri": "https://evil.example/"},
        {"client_id": registered.client_id, "post_logout_redirect_uri": "https://evil.example/"},
        {"id_token_hint": "not.a.token", "post_logout_redirect_uri": oauth.LOGOUT_REDIRECT},
    ):
        r = await api.client.get("/oauth2/logout", params=params)
        assert r.status_code == 400, params
        assert "location" not in r.headers


# ---- clients over the admin API, dynamic registration ------------------------------------------


async def _admin(api: Api) -> dict[str, str]:
    from auth_service.audit.context import RequestContext

    email = "oauth-admin@example.com"
    await api.services.accounts.registration.create_user(
        email, ADMIN_PASSWORD, admin=True, ctx=RequestContext()
    )
    token = (await api.login(email, ADMIN_PASSWORD)).json()["access_token"]
    return Api.bearer(token)


async def test_admin_api_manages_clients_and_audits(api: Api) -> None:
    headers = await _admin(api)
    body = {
        "name": "Billing",
        "type": "confidential",
        "redirect_uris": ["https://billing.example.com/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid email offline_access",
    }
    r = await api.client.post("/v1/admin/clients", json=body, headers=headers)
    assert r.status_code == 201, r.text
    created = r.json()
    client_id = created["client_id"]
    assert created["client_secret"]
    oauth.remember(created["client_secret"])
    assert (await api.client.get(f"/v1/admin/clients/{client_id}", headers=headers)).json()[
        "name"
    ] == "Billing"
    assert (
        "client_secret"
        not in (await api.client.get("/v1/admin/clients", headers=headers)).json()[0]
    )
    r = await api.client.patch(
        f"/v1/admin/clients/{client_id}", json={"name": "Billing 2"}, headers=headers
    )
    assert r.json()["name"] == "Billing 2"
    r = await api.client.patch(
        f"/v1/admin/clients/{client_id}",
        json={"redirect_uris": ["http://evil.example/cb"]},
        headers=headers,
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    r = await api.client.post(
        f"/v1/admin/clients/{client_id}/rotate-secret",
        json={"overlap_seconds": 60},
        headers=headers,
    )
    assert r.status_code == 200
    assert r.json()["client_secret"]
    assert (
        await api.client.delete(f"/v1/admin/clients/{client_id}", headers=headers)
    ).status_code == 204
    assert (
        await api.client.get(f"/v1/admin/clients/{client_id}", headers=headers)
    ).status_code == 404
    types = {e.type for e in (await api.services.audit.query(limit=100))[0]}
    assert {
        "oauth.client_created",
        "oauth.client_updated",
        "oauth.client_secret_rotated",
        "oauth.client_deleted",
    } <= types
    user = await api.user()
    r = await api.client.get("/v1/admin/clients", headers=Api.bearer(user["access_token"]))
    assert r.status_code == 403


async def test_dynamic_registration_is_off_by_default(api: Api) -> None:
    r = await api.client.post("/oauth2/register", json={"redirect_uris": ["https://a.example/cb"]})
    assert r.status_code == 404
    assert r.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "oauth": {
                "dynamic_registration": True,
                "registration_initial_access_token": "initial-token-1234567890",
            }
        }
    ],
    indirect=True,
)
async def test_dynamic_registration_needs_the_initial_access_token(api: Api) -> None:
    doc = (await api.client.get("/.well-known/openid-configuration")).json()
    assert doc["registration_endpoint"].endswith("/oauth2/register")
    body = {
        "client_name": "Dyn",
        "redirect_uris": ["https://dyn.example/cb"],
        "grant_types": ["authorization_code"],
    }
    r = await api.client.post("/oauth2/register", json=body)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_token"
    bearer = Api.bearer("initial-token-1234567890")
    r = await api.client.post("/oauth2/register", json=body, headers=bearer)
    assert r.status_code == 201, r.text
    assert r.json()["client_secret"]
    assert r.json()["token_endpoint_auth_method"] == "client_secret_basic"
    bad = {**body, "redirect_uris": ["javascript:alert(1)"]}
    r = await api.client.post("/oauth2/register", json=bad, headers=bearer)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_redirect_uri"
    client = await api.services.oauth.clients.get(
        (await api.client.post("/oauth2/register", json=body, headers=bearer)).json()["client_id"]
    )
    assert client.dynamically_registered
    assert not client.first_party
