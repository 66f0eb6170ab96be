"""DPoP (RFC 9449) on SQLite and PostgreSQL: tokens bound to the proof's key (``cnf.jkt``),
a public client's refresh tokens bound to its key, proofs checked (typ, alg, htm, htu, iat,
ath, one use per jti), server nonces, and userinfo refusing a bound token as Bearer."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest

from tests.support import oauth
from tests.support.api import Api
from tests.support.dpop import Holder


async def _bound_tokens(api: Api, holder: Holder, registered: oauth.Registered) -> dict[str, Any]:
    """The code flow of a new user, redeemed with a DPoP proof."""
    email = await oauth.new_user(api)
    auth = oauth.authorization(registered)
    params = oauth.callback(await oauth.authorize(api, auth, email=email))
    data = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": registered.redirect_uri,
        "code_verifier": auth.verifier,
        "client_id": registered.client_id,
    }
    headers = {
        "DPoP": holder.proof("/oauth2/token"),
        **(registered.basic if registered.secret else {}),
    }
    if registered.secret:
        data.pop("client_id")
    r = await api.client.post("/oauth2/token", data=data, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _userinfo(api: Api, token: str, scheme: str = "DPoP", proof: str | None = None) -> Any:
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return await api.client.get("/oauth2/userinfo", headers=headers)


async def test_a_proof_binds_the_access_token_and_userinfo_wants_the_key(api: Api) -> None:
    holder = Holder(api)
    registered = await oauth.client(api, client_type="public")
    body = await _bound_tokens(api, holder, registered)
    assert body["token_type"] == "DPoP"
    token = body["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["cnf"] == {"jkt": holder.jkt}

    ok = await _userinfo(api, token, proof=holder.proof("/oauth2/userinfo", "GET", token=token))
    assert ok.status_code == 200, ok.text
    assert "sub" in ok.json()

    as_bearer = await _userinfo(api, token, "Bearer")
    assert as_bearer.status_code == 401
    assert as_bearer.json()["error"] == "invalid_token"

    thief = Holder(api)
    stolen = await _userinfo(api, token, proof=thief.proof("/oauth2/userinfo", "GET", token=token))
    assert stolen.status_code == 401
    assert stolen.json()["error"] == "invalid_token"
    assert stolen.headers["www-authenticate"].startswith("DPoP ")

    no_proof = await _userinfo(api, token)
    assert no_proof.status_code == 401
    assert no_proof.json()["error"] == "invalid_dpop_proof"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"htu": "https://elsewhere.example/oauth2/userinfo"}, "htu"),
        ({"htm": "POST"}, "htm"),
        ({"iat": int(time.time()) - 3600}, "iat"),
        ({"iat": int(time.time()) + 3600}, "iat"),
        ({"ath": "wrong"}, "ath"),
    ],
)
async def test_a_bad_proof_at_userinfo_is_refused(
    api: Api, change: dict[str, Any], needle: str
) -> None:
    holder = Holder(api)
    registered = await oauth.client(api, client_type="public")
    token = (await _bound_tokens(api, holder, registered))["access_token"]
    proof = holder.proof("/oauth2/userinfo", "GET", token=token, **change)
    r = await _userinfo(api, token, proof=proof)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_dpop_proof"
    assert needle in r.json()["error_description"]
    assert 'error="invalid_dpop_proof"' in r.headers["www-authenticate"]


async def test_a_replayed_proof_is_refused(api: Api) -> None:
    holder = Holder(api)
    registered = await oauth.client(api, client_type="public")
    token = (await _bound_tokens(api, holder, registered))["access_token"]
    proof = holder.proof("/oauth2/userinfo", "GET", token=token)
    assert (await _userinfo(api, token, proof=proof)).status_code == 200
    again = await _userinfo(api, token, proof=proof)
    assert again.status_code == 401
    assert "already used" in again.json()["error_description"]


async def test_an_unbound_token_is_not_accepted_with_the_dpop_scheme(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    _, body = await oauth.code_tokens(api, registered, email)
    assert body["token_type"] == "Bearer"
    token = body["access_token"]
    holder = Holder(api)
    r = await _userinfo(api, token, proof=holder.proof("/oauth2/userinfo", "GET", token=token))
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_token"
    assert (await _userinfo(api, token, "Bearer")).status_code == 200


async def test_a_public_clients_refresh_token_is_bound_to_its_key(api: Api) -> None:
    holder = Holder(api)
    registered = await oauth.client(api, client_type="public")
    refresh = (await _bound_tokens(api, holder, registered))["refresh_token"]
    data = {"grant_type": "refresh_token", "refresh_token": refresh}
    data["client_id"] = registered.client_id
    bare = await api.client.post("/oauth2/token", data=data)
    assert bare.status_code == 400
    assert bare.json()["error"] == "invalid_grant"
    other = await api.client.post(
        "/oauth2/token", data=data, headers={"DPoP": Holder(api).proof("/oauth2/token")}
    )
    assert other.status_code == 400
    assert other.json()["error"] == "invalid_grant"
    good = await api.client.post(
        "/oauth2/token", data=data, headers={"DPoP": holder.proof("/oauth2/token")}
    )
    assert good.status_code == 200, good.text
    assert good.json()["token_type"] == "DPoP"
    claims = jwt.decode(good.json()["access_token"], options={"verify_signature": False})
    assert claims["cnf"]["jkt"] == holder.jkt


async def _client_credentials(api: Api, registered: oauth.Registered, proof: str) -> Any:
    return await api.client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"DPoP": proof, **registered.basic},
    )


@pytest.mark.parametrize(
    ("proof_change", "header_change", "needle"),
    [
        ({"htu": "http://testserver/oauth2/other"}, {}, "htu"),
        ({"htm": "GET"}, {}, "htm"),
        ({"iat": int(time.time()) - 3600}, {}, "iat"),
        ({}, {"typ": "JWT"}, "typ"),
        ({}, {"kid": "k1"}, "jwk only"),
    ],
)
async def test_a_bad_proof_at_the_token_endpoint_is_refused(
    api: Api, proof_change: dict[str, Any], header_change: dict[str, Any], needle: str
) -> None:
    holder = Holder(api)
    registered = await oauth.client(api, grant_types=("client_credentials",), scope="")
    proof = holder.proof("/oauth2/token", headers=header_change, **proof_change)
    r = await _client_credentials(api, registered, proof)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_dpop_proof"
    assert needle in r.json()["error_description"]


async def test_proofs_that_are_no_asymmetric_signature_are_refused(api: Api) -> None:
    holder = Holder(api)
    registered = await oauth.client(api, grant_types=("client_credentials",), scope="")
    claims = {"jti": "j1", "htm": "POST", "htu": holder.issuer + "/oauth2/token"}
    claims["iat"] = int(time.time())
    hs = jwt.encode(
        claims, "k" * 32, algorithm="HS256", headers={"typ": "dpop+jwt", "jwk": holder.jwk}
    )
    private = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(holder.private))
    leaked = jwt.encode(
        claims, holder.private, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": private}
    )
    for proof in (hs, leaked, "not.a.jwt"):
        r = await _client_credentials(api, registered, proof)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "invalid_dpop_proof"


async def test_introspection_says_a_token_is_dpop_bound(api: Api) -> None:
    holder = Holder(api)
    registered = await oauth.client(api)
    token = (await _bound_tokens(api, holder, registered))["access_token"]
    r = await api.client.post("/oauth2/introspect", data={"token": token}, headers=registered.basic)
    assert r.json()["active"] is True
    assert r.json()["token_type"] == "DPoP"
    assert r.json()["cnf"] == {"jkt": holder.jkt}


@pytest.mark.parametrize("settings_overrides", [{"oauth": {"dpop_nonce": True}}], indirect=True)
async def test_a_server_nonce_is_required_when_configured(api: Api) -> None:
    holder = Holder(api)
    registered = await oauth.client(api, grant_types=("client_credentials",), scope="")
    first = await _client_credentials(api, registered, holder.proof("/oauth2/token"))
    assert first.status_code == 400, first.text
    assert first.json()["error"] == "use_dpop_nonce"
    nonce = first.headers["dpop-nonce"]
    retried = await _client_credentials(api, registered, holder.proof("/oauth2/token", nonce=nonce))
    assert retried.status_code == 200, retried.text
    forged = holder.proof("/oauth2/token", nonce="1.forged")
    assert (await _client_credentials(api, registered, forged)).json()["error"] == "use_dpop_nonce"


async def test_discovery_advertises_dpop(api: Api) -> None:
    meta = (await api.client.get("/.well-known/openid-configuration")).json()
    assert "ES256" in meta["dpop_signing_alg_values_supported"]
    assert "HS256" not in meta["dpop_signing_alg_values_supported"]
