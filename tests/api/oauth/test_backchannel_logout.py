"""OpenID Connect Back-Channel Logout 1.0 on SQLite and PostgreSQL: when a browser session
ends (RP-initiated logout, revocation over the API, an admin disabling the user, signing out
on the pages), each client
with a ``backchannel_logout_uri`` that received tokens in it is POSTed a logout token that a
relying party verifies (signature by the client's ID-token algorithm, ``typ``, claims, no
``nonce``); a receiver that is down is retried over the job queue; clients without the URI
get nothing; a target the SSRF rules refuse is never contacted and ends in a failed audit."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest

from auth_service.oauth.backchannel import EVENT, KIND, TOKEN_TTL_SECONDS
from tests.support import oauth
from tests.support.api import Api
from tests.support.pages import submit
from tests.support.receivers import Receiver
from tests.support.wait import async_wait_for


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        # The receiver is on loopback over http: both allowed only by the webhooks' settings,
        # which are the rules of every outbound POST (webhooks.transport).
        "webhooks": {"allow_http": True, "allowed_networks": ["127.0.0.1/32"], "max_attempts": 3},
        "jobs": {"poll_interval_seconds": 0.05, "backoff_base_seconds": 0.05},
    }


async def _signed_in_tokens(
    api: Api, receiver_url: str | None, *, alg: str = "RS256", scope: str = "openid profile"
) -> tuple[oauth.Registered, str, dict[str, Any]]:
    """A client (with ``receiver_url`` as its back-channel URI), a user signed in on the
    pages, and the ID token's verified claims of a code flow."""
    extra: dict[str, Any] = {"id_token_signed_response_alg": alg}
    if receiver_url is not None:
        extra.update(
            backchannel_logout_uri=receiver_url + "/backchannel",
            backchannel_logout_session_required=True,
        )
    registered = await oauth.client(api, **extra)
    email = await oauth.new_user(api)
    _auth, tokens = await oauth.code_tokens(api, registered, email, scope=scope)
    claims = await oauth.verify_id_token(api, tokens["id_token"], registered.client_id)
    return registered, email, claims


async def _verified_logout_token(api: Api, body: bytes, client_id: str, alg: str) -> dict[str, Any]:
    """The checks of section 2.6, as a relying party makes them."""
    form = parse_qs(body.decode())
    assert list(form) == ["logout_token"]
    token = form["logout_token"][0]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "logout+jwt"
    assert header["alg"] == alg
    key = next(k for k in (await oauth.jwks(api)).keys if k.key_id == header["kid"])
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=[alg],
        audience=client_id,
        issuer=api.services.settings.issuer,
        options={"require": ["iss", "aud", "iat", "exp", "jti", "events"]},
    )
    assert claims["events"] == {EVENT: {}}
    assert "nonce" not in claims
    assert 0 < claims["exp"] - claims["iat"] <= TOKEN_TTL_SECONDS
    return claims


async def test_logout_posts_a_verifiable_logout_token_to_the_clients_of_the_session(
    api: Api,
) -> None:
    with Receiver() as receiver:
        registered, email, id_claims = await _signed_in_tokens(api, receiver.url, alg="ES256")
        # A second client in the same browser session, without a back-channel URI.
        silent = await oauth.client(api, name="No back-channel")
        _auth, other = await oauth.code_tokens(api, silent, email, scope="openid")
        r = await api.client.get(
            "/oauth2/logout", params={"id_token_hint": other["id_token"]}, follow_redirects=False
        )
        assert r.status_code in (200, 302, 303), r.text
        [got] = await async_wait_for(lambda: receiver.requests, 15, "the logout token")
    assert got.path == "/backchannel"
    assert got.headers["content-type"] == "application/x-www-form-urlencoded"
    claims = await _verified_logout_token(api, got.body, registered.client_id, "ES256")
    assert claims["sid"] == id_claims["sid"]
    assert claims["sub"] == id_claims["sub"]

    # One job: the client without a URI got none.
    async def finished() -> bool:
        return await api.services.jobs.pending(KIND) == 0

    await async_wait_for(finished, 10, "the job to finish")
    _views, total = await api.services.job_admin.list(kind=KIND)
    assert total == 1


async def test_a_receiver_that_is_down_is_retried_after_an_api_revocation(api: Api) -> None:
    with Receiver(fail_first=2) as receiver:
        registered, email, id_claims = await _signed_in_tokens(api, receiver.url)
        login = await api.login(email, oauth.PASSWORD)
        bearer = api.bearer(login.json()["access_token"])
        r = await api.client.delete(f"/v1/sessions/{id_claims['sid']}", headers=bearer)
        assert r.status_code == 204, r.text
        [got] = await async_wait_for(lambda: receiver.requests, 15, "the third attempt")
    claims = await _verified_logout_token(api, got.body, registered.client_id, "RS256")
    assert (claims["sid"], claims["sub"]) == (id_claims["sid"], id_claims["sub"])
    sent = await async_wait_for(
        lambda: _events(api, "oauth.backchannel_logout_sent"), 10, "the audit of the delivery"
    )
    assert sent[0]["details"]["attempt"] == 3
    assert sent[0]["details"]["client_id"] == registered.client_id


@pytest.mark.parametrize("how", ["admin disables the user", "sign-out on the pages"])
async def test_other_ends_of_a_session_log_out_its_clients(api: Api, how: str) -> None:
    with Receiver() as receiver:
        registered, _email, id_claims = await _signed_in_tokens(api, receiver.url)
        user_id = id_claims["sub"]
        if how == "admin disables the user":
            r = await api.client.patch(
                f"/v1/admin/users/{user_id}",
                json={"status": "disabled"},
                headers=await api.admin_headers(),
            )
            assert r.status_code == 200, r.text
        else:
            r = await submit(api.client, "/account", "/logout", {})
            assert (r.status_code, r.headers["location"]) == (303, "/login")
        [got] = await async_wait_for(lambda: receiver.requests, 15, "the logout token")
    claims = await _verified_logout_token(api, got.body, registered.client_id, "RS256")
    assert (claims["sid"], claims["sub"]) == (id_claims["sid"], user_id)


async def test_a_target_the_ssrf_rules_refuse_is_never_contacted(api: Api) -> None:
    # The cloud metadata address: link-local, not in webhooks.allowed_networks.
    _registered, email, id_claims = await _signed_in_tokens(api, "http://169.254.169.254")
    login = await api.login(email, oauth.PASSWORD)
    r = await api.client.delete(
        f"/v1/sessions/{id_claims['sid']}", headers=api.bearer(login.json()["access_token"])
    )
    assert r.status_code == 204, r.text
    [failed] = await async_wait_for(
        lambda: _events(api, "oauth.backchannel_logout_failed"), 15, "the dead letter"
    )
    assert failed["outcome"] == "failure"
    assert "target refused" in failed["details"]["error"]
    assert failed["details"]["attempt"] == 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"backchannel_logout_uri": "ftp://rp.example/logout"}, "backchannel_logout_uri"),
        ({"backchannel_logout_uri": "https://rp.example/logout#x"}, "backchannel_logout_uri"),
        ({"backchannel_logout_session_required": True}, "backchannel_logout_session_required"),
    ],
)
async def test_the_admin_api_refuses_bad_back_channel_metadata(
    api: Api, change: dict[str, Any], field: str
) -> None:
    admin = await api.admin_headers()
    body = {"name": "RP", "type": "confidential", "redirect_uris": [oauth.REDIRECT], **change}
    r = await api.client.post("/v1/admin/clients", json=body, headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field


async def test_discovery_and_the_admin_api_show_back_channel_logout(api: Api) -> None:
    doc = (await api.client.get("/.well-known/openid-configuration")).json()
    assert doc["backchannel_logout_supported"] is True
    assert doc["backchannel_logout_session_supported"] is True
    admin = await api.admin_headers()
    body = {
        "name": "RP",
        "type": "confidential",
        "redirect_uris": [oauth.REDIRECT],
        "backchannel_logout_uri": "https://rp.example/logout?from=op",
        "backchannel_logout_session_required": True,
    }
    r = await api.client.post("/v1/admin/clients", json=body, headers=admin)
    assert r.status_code == 201, r.text
    client_id = r.json()["client_id"]
    assert r.json()["backchannel_logout_uri"] == "https://rp.example/logout?from=op"
    r = await api.client.patch(
        f"/v1/admin/clients/{client_id}", json={"backchannel_logout_uri": ""}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["backchannel_logout_uri"] is None


async def _events(api: Api, event_type: str) -> list[dict[str, Any]]:
    entries, _total = await api.services.audit.query(event_type=event_type)
    return [{"outcome": e.outcome, "details": e.details} for e in entries]
