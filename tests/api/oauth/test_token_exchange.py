"""Token exchange (RFC 8693) on SQLite and PostgreSQL: a confidential client trades a user's
access token for one meant for an audience its policy allows, narrowed in scope, with
``act`` naming it (delegation, section 4.1); what the RFC and our policy refuse."""

from __future__ import annotations

from typing import Any

import jwt

from auth_service.audit.context import RequestContext
from tests.api.test_oauth_dpop import Holder
from tests.support import oauth
from tests.support.api import Api

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
DOWNSTREAM = "https://reports.example.com"


async def _exchanger(api: Api, **extra: Any) -> oauth.Registered:
    """A confidential client that may exchange tokens for DOWNSTREAM."""
    return await oauth.client(
        api,
        grant_types=("authorization_code", "refresh_token", GRANT, "client_credentials"),
        token_exchange_audiences=extra.pop("token_exchange_audiences", (DOWNSTREAM,)),
        **extra,
    )


async def _user_token(api: Api, registered: oauth.Registered) -> dict[str, Any]:
    email = await oauth.new_user(api)
    _auth, tokens = await oauth.code_tokens(api, registered, email, scope="openid profile email")
    return tokens


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def _exchange(api: Api, registered: oauth.Registered, **data: str) -> Any:
    params = {"grant_type": GRANT, "subject_token_type": ACCESS, **data}
    return await oauth.token(api, registered, **params)


async def test_a_users_token_is_exchanged_for_a_delegated_token_of_another_audience(
    api: Api,
) -> None:
    registered = await _exchanger(api)
    tokens = await _user_token(api, registered)
    subject = _claims(tokens["access_token"])

    r = await _exchange(
        api, registered, subject_token=tokens["access_token"], audience=DOWNSTREAM, scope="email"
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["issued_token_type"] == ACCESS
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "email"
    assert "refresh_token" not in body
    claims = await _verified_access_token(api, body["access_token"])
    assert claims["sub"] == subject["sub"]
    assert claims["aud"] == DOWNSTREAM
    assert claims["act"] == {"sub": registered.client_id}
    assert claims["client_id"] == registered.client_id
    assert claims["scope"] == "email"
    assert "sid" not in claims
    assert claims["exp"] <= subject["exp"]

    # Exchanged again: the previous actor is nested (section 4.1, a chain of delegation).
    downstream = await _exchanger(api, token_exchange_audiences=(DOWNSTREAM,), name="Reports")
    await api.services.oauth.clients.update(
        registered.client_id,
        RequestContext(),
        token_exchange_audiences=(DOWNSTREAM, downstream.client_id),
    )
    hop = await _exchange(
        api, registered, subject_token=tokens["access_token"], audience=downstream.client_id
    )
    assert hop.status_code == 200, hop.text
    again = await _exchange(
        api, downstream, subject_token=hop.json()["access_token"], resource=DOWNSTREAM
    )
    assert again.status_code == 200, again.text
    chained = _claims(again.json()["access_token"])
    assert chained["act"] == {"sub": downstream.client_id, "act": {"sub": registered.client_id}}
    assert chained["sub"] == subject["sub"]

    doc = (await api.client.get("/.well-known/openid-configuration")).json()
    assert GRANT in doc["grant_types_supported"]


# What each refusal changes in a good request, and the error it gets (section 2.2.2).
REFUSALS: list[tuple[dict[str, str], str]] = [
    ({"subject_token_type": "urn:ietf:params:oauth:token-type:id_token"}, "invalid_request"),
    ({"subject_token_type": ""}, "invalid_request"),
    ({"audience": "https://elsewhere.example"}, "invalid_target"),
    ({"audience": ""}, "invalid_target"),
    ({"audience": "", "resource": "not-a-uri"}, "invalid_target"),
    ({"scope": "email offline_access"}, "invalid_scope"),
    ({"requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}, "invalid_request"),
    ({"actor_token_type": ACCESS}, "invalid_request"),
    ({"subject_token": "not.a.token"}, "invalid_grant"),
]


async def test_refusals_follow_the_rfc(api: Api) -> None:
    registered = await _exchanger(api)
    tokens = await _user_token(api, registered)
    for change, error in REFUSALS:
        data = {"subject_token": tokens["access_token"], "audience": DOWNSTREAM, **change}
        r = await _exchange(api, registered, **data)
        assert (r.status_code, r.json()["error"]) == (400, error), (change, r.text)
    # Nothing above spent or harmed the subject token.
    r = await _exchange(api, registered, subject_token=tokens["access_token"], audience=DOWNSTREAM)
    assert r.status_code == 200, r.text


async def test_a_revoked_subject_token_and_another_clients_token_are_refused(api: Api) -> None:
    registered = await _exchanger(api)
    tokens = await _user_token(api, registered)
    other = await _exchanger(api, name="Another service")
    r = await _exchange(api, other, subject_token=tokens["access_token"], audience=DOWNSTREAM)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")

    revoked = await api.client.post(
        "/oauth2/revoke", data={"token": tokens["access_token"]}, headers=registered.basic
    )
    assert revoked.status_code == 200
    r = await _exchange(api, registered, subject_token=tokens["access_token"], audience=DOWNSTREAM)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


async def test_an_actor_token_of_the_client_names_the_actor(api: Api) -> None:
    registered = await _exchanger(api)
    tokens = await _user_token(api, registered)
    own = await oauth.token(api, registered, grant_type="client_credentials")
    assert own.status_code == 200, own.text
    r = await _exchange(
        api,
        registered,
        subject_token=tokens["access_token"],
        audience=DOWNSTREAM,
        actor_token=own.json()["access_token"],
        actor_token_type=ACCESS,
    )
    assert r.status_code == 200, r.text
    assert _claims(r.json()["access_token"])["act"] == {"sub": registered.client_id}
    # The user's token is no actor token: not this client's own.
    r = await _exchange(
        api,
        registered,
        subject_token=tokens["access_token"],
        audience=DOWNSTREAM,
        actor_token=(await _user_token(api, await _exchanger(api)))["access_token"],
        actor_token_type=ACCESS,
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


async def test_a_dpop_bound_subject_token_needs_a_proof_of_its_key(api: Api) -> None:
    registered = await _exchanger(api)
    holder = Holder(api)
    bound = await api.client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"DPoP": holder.proof("/oauth2/token"), **registered.basic},
    )
    assert bound.status_code == 200, bound.text
    token = bound.json()["access_token"]
    assert _claims(token)["cnf"] == {"jkt": holder.jkt}

    r = await _exchange(api, registered, subject_token=token, audience=DOWNSTREAM)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    thief = await api.client.post(
        "/oauth2/token",
        data={
            "grant_type": GRANT,
            "subject_token_type": ACCESS,
            "subject_token": token,
            "audience": DOWNSTREAM,
        },
        headers={"DPoP": Holder(api).proof("/oauth2/token"), **registered.basic},
    )
    assert (thief.status_code, thief.json()["error"]) == (400, "invalid_grant")
    ok = await api.client.post(
        "/oauth2/token",
        data={
            "grant_type": GRANT,
            "subject_token_type": ACCESS,
            "subject_token": token,
            "audience": DOWNSTREAM,
        },
        headers={"DPoP": holder.proof("/oauth2/token"), **registered.basic},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["token_type"] == "DPoP"
    assert _claims(ok.json()["access_token"])["cnf"] == {"jkt": holder.jkt}


async def test_only_confidential_clients_with_the_grant_may_exchange(api: Api) -> None:
    admin = await api.admin_headers()
    body = {
        "name": "SPA",
        "type": "public",
        "redirect_uris": [oauth.REDIRECT],
        "grant_types": ["authorization_code", GRANT],
        "token_exchange_audiences": [DOWNSTREAM],
    }
    r = await api.client.post("/v1/admin/clients", json=body, headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "grant_types"
    plain = await oauth.client(api)
    tokens = await _user_token(api, plain)
    r = await _exchange(api, plain, subject_token=tokens["access_token"], audience=DOWNSTREAM)
    assert (r.status_code, r.json()["error"]) == (400, "unauthorized_client")


async def _verified_access_token(api: Api, token: str) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    key = next(k for k in (await oauth.jwks(api)).keys if k.key_id == header["kid"])
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=[header["alg"]],
        audience=DOWNSTREAM,
        issuer=api.services.settings.issuer,
    )
    return claims
