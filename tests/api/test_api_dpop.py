"""DPoP (RFC 9449) at the JSON API (``/v1``), on SQLite and PostgreSQL: a client with its own
EC key signs in with a proof, its tokens are bound to the key (``cnf.jkt``, the session's
refresh token too), ``/v1`` routes want ``Authorization: DPoP`` and a proof by that key, and
a plain sign-in works exactly as before."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest

from tests.support.api import SQLITE_ONLY, Api
from tests.support.dpop import Holder
from tests.support.mfa import code_at, enrol_totp, mfa_flow
from tests.support.settings import PASSWORD

ME = "/v1/users/me"
LOGIN = "/v1/auth/login"
REFRESH = "/v1/auth/refresh"


async def _signed_in(api: Api, holder: Holder) -> dict[str, Any]:
    """A new user signed in with a DPoP proof: the token response plus email."""
    email = f"dpop-{uuid.uuid4().hex[:10]}@example.com"
    assert (await api.register(email, PASSWORD)).status_code == 202
    r = await api.login(email, PASSWORD, headers={"DPoP": holder.proof(LOGIN)})
    assert r.status_code == 200, r.text
    return {**r.json(), "email": email}


def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


async def test_a_dpop_sign_in_binds_the_token_and_me_wants_the_key(api: Api) -> None:
    holder = Holder(api)
    tokens = await _signed_in(api, holder)
    token = tokens["access_token"]
    assert tokens["token_type"] == "DPoP"
    assert _claims(token)["cnf"] == {"jkt": holder.jkt}
    me = await api.client.get(ME, headers=holder.headers(ME, token))
    assert me.status_code == 200, me.text
    assert me.json()["email"] == tokens["email"]
    sessions = await api.client.get("/v1/sessions", headers=holder.headers("/v1/sessions", token))
    assert sessions.status_code == 200, sessions.text
    # The same token as a plain bearer token: refused, and the answer says how to use it.
    bearer = await api.client.get(ME, headers=api.bearer(token))
    assert bearer.status_code == 401
    assert bearer.json()["type"].endswith("/invalid-token")
    assert "DPoP-bound" in bearer.json()["detail"]
    challenge = bearer.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="auth-service", error="invalid_token"'), challenge
    assert 'DPoP realm="auth-service", algs="ES256' in challenge
    # The DPoP scheme without a proof.
    bare = await api.client.get(ME, headers={"Authorization": f"DPoP {token}"})
    assert bare.status_code == 401
    assert 'DPoP realm="auth-service"' in bare.headers["www-authenticate"]
    assert 'error="invalid_dpop_proof"' in bare.headers["www-authenticate"]


async def test_a_plain_sign_in_is_unchanged_and_not_accepted_as_dpop(api: Api) -> None:
    user = await api.user()
    assert user["token_type"] == "Bearer"
    assert "cnf" not in _claims(user["access_token"])
    assert (await api.client.get(ME, headers=api.bearer(user["access_token"]))).status_code == 200
    holder = Holder(api)
    r = await api.client.get(ME, headers=holder.headers(ME, user["access_token"]))
    assert r.status_code == 401
    assert "not DPoP-bound" in r.json()["detail"]
    refreshed = await api.client.post(REFRESH, json={"refresh_token": user["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["token_type"] == "Bearer"
    unauthenticated = await api.client.get(ME)
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["www-authenticate"] == (
        'Bearer realm="auth-service", DPoP realm="auth-service", algs="ES256 ES384 ES512 '
        'RS256 PS256 RS384 PS384 EdDSA"'
    )


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"htu": "https://elsewhere.example/v1/users/me"}, "htu"),
        ({"htm": "POST"}, "htm"),
        ({"iat": int(time.time()) - 3600}, "iat"),
        ({"iat": int(time.time()) + 3600}, "iat"),
        ({"ath": "wrong"}, "ath"),
    ],
)
async def test_a_bad_proof_at_me_is_refused(api: Api, change: dict[str, Any], needle: str) -> None:
    holder = Holder(api)
    token = (await _signed_in(api, holder))["access_token"]
    r = await api.client.get(ME, headers=holder.headers(ME, token, **change))
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/invalid-dpop-proof-at-resource")
    assert needle in r.json()["detail"]
    assert 'error="invalid_dpop_proof"' in r.headers["www-authenticate"]


async def test_a_replayed_proof_and_another_key_are_refused(api: Api) -> None:
    holder = Holder(api)
    token = (await _signed_in(api, holder))["access_token"]
    headers = holder.headers(ME, token)
    assert (await api.client.get(ME, headers=headers)).status_code == 200
    again = await api.client.get(ME, headers=headers)
    assert again.status_code == 401
    assert "already used" in again.json()["detail"]
    thief = Holder(api)
    stolen = await api.client.get(ME, headers=thief.headers(ME, token))
    assert stolen.status_code == 401
    assert stolen.json()["type"].endswith("/invalid-token")
    assert "not by the key" in stolen.json()["detail"]
    assert 'DPoP realm="auth-service", algs=' in stolen.headers["www-authenticate"]


async def test_the_refresh_token_is_bound_to_the_key(api: Api) -> None:
    holder = Holder(api)
    tokens = await _signed_in(api, holder)
    refresh_token = tokens["refresh_token"]
    # Without a proof, or with another key's: refused, and nothing is spent.
    bare = await api.client.post(REFRESH, json={"refresh_token": refresh_token})
    assert bare.status_code == 400
    assert bare.json()["type"].endswith("/dpop-key-required")
    other = await api.client.post(
        REFRESH, json={"refresh_token": refresh_token}, headers={"DPoP": Holder(api).proof(REFRESH)}
    )
    assert other.status_code == 400
    assert other.json()["type"].endswith("/dpop-key-required")
    # The marker of a bound session's refresh token cannot be stripped (the digest covers it).
    assert refresh_token.startswith("dpop.")
    stripped = await api.client.post(
        REFRESH,
        json={"refresh_token": refresh_token.removeprefix("dpop.")},
        headers={"DPoP": holder.proof(REFRESH)},
    )
    assert stripped.status_code == 401
    assert stripped.json()["type"].endswith("/invalid-refresh-token")
    # The holder of the key: a new pair, the access token bound again.
    good = await api.client.post(
        REFRESH, json={"refresh_token": refresh_token}, headers={"DPoP": holder.proof(REFRESH)}
    )
    assert good.status_code == 200, good.text
    assert good.json()["token_type"] == "DPoP"
    token = good.json()["access_token"]
    assert _claims(token)["cnf"] == {"jkt": holder.jkt}
    assert (await api.client.get(ME, headers=holder.headers(ME, token))).status_code == 200
    # The successor is bound too.
    after = await api.client.post(REFRESH, json={"refresh_token": good.json()["refresh_token"]})
    assert after.status_code == 400


@pytest.mark.parametrize(
    "change",
    [{"htu": "https://elsewhere.example/v1/auth/login"}, {"htm": "GET"}, {"iat": 1}],
)
async def test_a_bad_proof_at_sign_in_issues_nothing(api: Api, change: dict[str, Any]) -> None:
    holder = Holder(api)
    email = f"dpop-{uuid.uuid4().hex[:10]}@example.com"
    assert (await api.register(email, PASSWORD)).status_code == 202
    r = await api.login(email, PASSWORD, headers={"DPoP": holder.proof(LOGIN, **change)})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/invalid-dpop-proof")
    assert r.headers["www-authenticate"].startswith("DPoP ")
    assert 'error="invalid_dpop_proof"' in r.headers["www-authenticate"]
    identity = await api.services.accounts.identities.by_email(
        api.services.accounts.tenant_id, email
    )
    assert identity is not None
    assert await api.services.sessions.list_sessions(identity.id) == []
    proof = holder.proof(LOGIN)
    assert (await api.login(email, PASSWORD, headers={"DPoP": proof})).status_code == 200
    replayed = await api.login(email, PASSWORD, headers={"DPoP": proof})
    assert replayed.status_code == 400
    assert "already used" in replayed.json()["detail"]


async def test_the_second_factor_binds_to_its_own_proof(api: Api) -> None:
    user = await api.user()
    secret = await enrol_totp(api, user["access_token"])
    flow = await mfa_flow(api, user)
    holder = Holder(api)
    path = "/v1/auth/login/mfa"
    body = {"flow_id": flow["flow_id"], "totp_code": code_at(secret)}
    # A bad proof refuses before the flow is touched: the code still works after.
    bad = await api.client.post(path, json=body, headers={"DPoP": holder.proof(LOGIN)})
    assert bad.status_code == 400, bad.text
    r = await api.client.post(path, json=body, headers={"DPoP": holder.proof(path)})
    assert r.status_code == 200, r.text
    assert _claims(r.json()["access_token"])["cnf"] == {"jkt": holder.jkt}


@pytest.mark.parametrize("settings_overrides", [{"oauth": {"dpop_nonce": True}}], indirect=True)
async def test_a_server_nonce_is_required_when_configured(api: Api) -> None:
    holder = Holder(api)
    email = f"dpop-{uuid.uuid4().hex[:10]}@example.com"
    assert (await api.register(email, PASSWORD)).status_code == 202
    first = await api.login(email, PASSWORD, headers={"DPoP": holder.proof(LOGIN)})
    assert first.status_code == 400
    assert first.json()["type"].endswith("/use-dpop-nonce")
    assert 'error="use_dpop_nonce"' in first.headers["www-authenticate"]
    nonce = first.headers["dpop-nonce"]
    signed_in = await api.login(email, PASSWORD, headers={"DPoP": holder.proof(LOGIN, nonce=nonce)})
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["access_token"]
    stale = await api.client.get(ME, headers=holder.headers(ME, token))
    assert stale.status_code == 401
    assert stale.json()["type"].endswith("/use-dpop-nonce-at-resource")
    assert 'DPoP realm="auth-service"' in stale.headers["www-authenticate"]
    assert 'error="use_dpop_nonce"' in stale.headers["www-authenticate"]
    fresh = stale.headers["dpop-nonce"]
    me = await api.client.get(ME, headers=holder.headers(ME, token, nonce=fresh))
    assert me.status_code == 200, me.text


@SQLITE_ONLY
@pytest.mark.parametrize(
    "settings_overrides", [{"server": {"cors_origins": ["https://app.example"]}}], indirect=True
)
async def test_cors_allows_the_dpop_header_and_exposes_the_nonce(api: Api) -> None:
    origin = {"Origin": "https://app.example"}
    preflight = await api.client.options(
        ME,
        headers={
            **origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, dpop",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert "dpop" in preflight.headers["access-control-allow-headers"].lower()
    r = await api.client.get(ME, headers=origin)
    assert "dpop-nonce" in r.headers["access-control-expose-headers"].lower()
