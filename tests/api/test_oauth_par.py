"""Pushed authorization requests (RFC 9126) on SQLite and PostgreSQL: push, authorize by
request_uri, redeem; a request_uri is single use, short-lived and its client's only; a
client (or a server) that requires PAR refuses plain authorization requests."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from auth_service.audit.context import RequestContext
from auth_service.db.base import utcnow
from auth_service.flows.models import FlowRow
from tests.support import oauth
from tests.support.api import Api

URN = "urn:ietf:params:oauth:request_uri:"


async def _push(
    api: Api, registered: oauth.Registered, auth: oauth.Authorization, **change: str
) -> Any:
    data = {k: v for k, v in auth.params.items() if k != "client_id"}
    data.update(change)
    headers = registered.basic if registered.secret else {}
    if not registered.secret:
        data["client_id"] = registered.client_id
    return await api.client.post("/oauth2/par", data=data, headers=headers)


async def _pushed_uri(api: Api, registered: oauth.Registered, auth: oauth.Authorization) -> str:
    r = await _push(api, registered, auth)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["request_uri"].startswith(URN)
    assert body["expires_in"] == 60
    assert r.headers["cache-control"] == "no-store"
    uri: str = body["request_uri"]
    return uri


async def _authorize_by_uri(
    api: Api, client_id: str, request_uri: str, email: str | None = None
) -> Any:
    r = await api.client.get(
        "/oauth2/authorize", params={"client_id": client_id, "request_uri": request_uri}
    )
    return await oauth.follow(api, r, email=email)


async def test_a_pushed_request_is_authorized_by_its_request_uri_and_redeemed(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    auth = oauth.authorization(registered)
    request_uri = await _pushed_uri(api, registered, auth)
    params = oauth.callback(await _authorize_by_uri(api, registered.client_id, request_uri, email))
    assert params["state"] == auth.state
    exchange = {"grant_type": "authorization_code", "code": params["code"]}
    exchange.update(redirect_uri=registered.redirect_uri, code_verifier=auth.verifier)
    r = await oauth.token(api, registered, **exchange)
    assert r.status_code == 200, r.text
    assert "id_token" in r.json()


async def test_only_the_pushed_parameters_count(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    auth = oauth.authorization(registered)
    request_uri = await _pushed_uri(api, registered, auth)
    r = await api.client.get(
        "/oauth2/authorize",
        params={"client_id": registered.client_id, "request_uri": request_uri, "state": "other"},
    )
    params = oauth.callback(await oauth.follow(api, r, email=email))
    assert params["state"] == auth.state


async def test_a_request_uri_is_used_once(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    request_uri = await _pushed_uri(api, registered, oauth.authorization(registered))
    oauth.callback(await _authorize_by_uri(api, registered.client_id, request_uri, email))
    again = await _authorize_by_uri(api, registered.client_id, request_uri)
    assert again.status_code == 400
    assert "invalid_request_uri" in again.text
    assert "location" not in again.headers


async def test_an_expired_request_uri_is_refused(api: Api) -> None:
    registered = await oauth.client(api)
    request_uri = await _pushed_uri(api, registered, oauth.authorization(registered))
    async with api.services.db.single() as conn:
        await conn.execute(update(FlowRow).values(expires_at=utcnow()))
    r = await _authorize_by_uri(api, registered.client_id, request_uri)
    assert r.status_code == 400
    assert "invalid_request_uri" in r.text


async def test_another_clients_request_uri_is_refused_and_stays_usable(api: Api) -> None:
    owner = await oauth.client(api)
    other = await oauth.client(api, name="Other App")
    email = await oauth.new_user(api)
    auth = oauth.authorization(owner)
    request_uri = await _pushed_uri(api, owner, auth)
    stolen = await _authorize_by_uri(api, other.client_id, request_uri)
    assert stolen.status_code == 400
    assert "invalid_request_uri" in stolen.text
    params = oauth.callback(await _authorize_by_uri(api, owner.client_id, request_uri, email))
    assert params["state"] == auth.state


async def test_a_malformed_request_uri_is_refused_without_a_500(api: Api) -> None:
    registered = await oauth.client(api)
    r = await _authorize_by_uri(api, registered.client_id, URN + "not-a-uuid\u00e9")
    assert r.status_code == 400
    assert "invalid_request_uri" in r.text


async def test_a_par_required_client_refuses_a_plain_request(api: Api) -> None:
    registered = await oauth.client(api, require_pushed_authorization_requests=True)
    email = await oauth.new_user(api)
    params = oauth.callback(
        await oauth.authorize(api, oauth.authorization(registered), email=email)
    )
    assert params["error"] == "invalid_request"
    assert "pushed" in params["error_description"]
    auth = oauth.authorization(registered)
    request_uri = await _pushed_uri(api, registered, auth)
    done = oauth.callback(await _authorize_by_uri(api, registered.client_id, request_uri, email))
    assert done["state"] == auth.state
    assert "code" in done


@pytest.mark.parametrize(
    "settings_overrides",
    [{"oauth": {"require_pushed_authorization_requests": True}}],
    indirect=True,
)
async def test_a_server_that_requires_par_says_so_and_refuses_plain_requests(api: Api) -> None:
    meta = (await api.client.get("/.well-known/openid-configuration")).json()
    assert meta["require_pushed_authorization_requests"] is True
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    params = oauth.callback(
        await oauth.authorize(api, oauth.authorization(registered), email=email)
    )
    assert params["error"] == "invalid_request"


async def test_discovery_advertises_the_par_endpoint(api: Api) -> None:
    meta = (await api.client.get("/.well-known/oauth-authorization-server")).json()
    assert meta["pushed_authorization_request_endpoint"] == meta["issuer"] + "/oauth2/par"
    assert "require_pushed_authorization_requests" not in meta


async def test_the_par_endpoint_authenticates_the_client(api: Api) -> None:
    registered = await oauth.client(api)
    auth = oauth.authorization(registered)
    wrong = oauth.Registered(registered.client_id, "not-the-secret")
    r = await _push(api, wrong, auth)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


async def test_a_public_client_pushes_with_its_client_id(api: Api) -> None:
    registered = await oauth.client(api, client_type="public")
    r = await _push(api, registered, oauth.authorization(registered))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"request_uri": URN + "abc"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ],
)
async def test_a_bad_pushed_request_is_refused_at_once(
    api: Api, change: dict[str, str], error: str
) -> None:
    registered = await oauth.client(api)
    r = await _push(api, registered, oauth.authorization(registered), **change)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error


async def test_require_par_is_set_by_the_admin_api(api: Api) -> None:
    headers = await api.admin_headers()
    created = await api.client.post(
        "/v1/admin/clients",
        json={
            "name": "PAR app",
            "type": "confidential",
            "redirect_uris": [oauth.REDIRECT],
            "require_pushed_authorization_requests": True,
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["require_pushed_authorization_requests"] is True
    client_id = created.json()["client_id"]
    patched = await api.client.patch(
        f"/v1/admin/clients/{client_id}",
        json={"require_pushed_authorization_requests": False},
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["require_pushed_authorization_requests"] is False
    client = await api.services.oauth.clients.get(client_id)
    assert client.require_pushed_authorization_requests is False
    await api.services.oauth.clients.update(
        client_id, RequestContext(), require_pushed_authorization_requests=True
    )
    assert (await api.services.oauth.clients.get(client_id)).require_pushed_authorization_requests
