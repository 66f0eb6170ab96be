"""The authorization endpoint on SQLite and PostgreSQL: what it refuses and where it says so
(never at an unregistered URI), prompt, max_age, consent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from auth_service.db.base import utcnow
from auth_service.sessions.models import Session
from tests.support import oauth
from tests.support.api import Api
from tests.support.pages import ORIGIN, form


async def _get(api: Api, params: dict[str, str]):  # type: ignore[no-untyped-def]
    return await api.client.get("/oauth2/authorize", params=params)


# ---- errors never reach an unvalidated URI --------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "no-such-client"},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": "https://app.example.com/callback/../evil"},
        {"redirect_uri": "https://app.example.com/callback?x=1"},
        {"redirect_uri": "https://APP.example.com/callback"},
        {"redirect_uri": ""},
    ],
)
async def test_unknown_client_or_redirect_uri_is_shown_never_redirected(
    api: Api, change: dict[str, str]
) -> None:
    registered = await oauth.client(api)
    auth = oauth.authorization(registered, response_type="token")  # also broken: still shown
    auth.params.update(change)
    r = await _get(api, auth.params)
    assert r.status_code == 400
    assert "location" not in r.headers
    assert "evil" not in r.text
    assert "invalid_request" in r.text


async def test_duplicate_redirect_uri_is_not_redirected(api: Api) -> None:
    registered = await oauth.client(api)
    auth = oauth.authorization(registered)
    query = [*list(auth.params.items()), ("redirect_uri", "https://evil.example/cb")]
    r = await api.client.get("/oauth2/authorize", params=query)
    assert r.status_code == 400
    assert "location" not in r.headers


def _error(r) -> dict[str, str]:  # type: ignore[no-untyped-def]
    params = oauth.callback(r)
    assert params["iss"]
    return params


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),  # omitted means plain
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "bogus"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://app.example.com/r"}, "request_uri_not_supported"),
        ({"resource": "https://api.example.com/"}, "invalid_target"),
        ({"response_mode": "fragment"}, "invalid_request"),
    ],
)
async def test_refusals_go_back_to_the_registered_uri(
    api: Api, change: dict[str, str], error: str
) -> None:
    registered = await oauth.client(api)
    auth = oauth.authorization(registered)
    auth.params.update(change)
    r = await _get(api, auth.params)
    assert r.headers["location"].startswith(registered.redirect_uri + "?")
    params = _error(r)
    assert params["error"] == error, params
    assert params["state"] == auth.state


async def test_a_client_without_the_code_grant_is_unauthorized(api: Api) -> None:
    registered = await oauth.client(api, grant_types=("client_credentials",), scope="")
    params = _error(await _get(api, oauth.authorization(registered).params))
    assert params["error"] == "unauthorized_client"


# ---- prompt, max_age --------------------------------------------------------------------------


async def test_prompt_none_without_a_session_is_login_required(api: Api) -> None:
    registered = await oauth.client(api)
    auth = oauth.authorization(registered, prompt="none")
    params = _error(await _get(api, auth.params))
    assert params["error"] == "login_required"


async def test_prompt_none_with_a_session_answers_silently(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    await oauth.sign_in(api, email)
    auth = oauth.authorization(registered, prompt="none")
    params = oauth.callback(await _get(api, auth.params))
    assert params["code"]


async def test_prompt_none_when_consent_is_needed_is_consent_required(api: Api) -> None:
    registered = await oauth.client(api, first_party=False)
    email = await oauth.new_user(api)
    await oauth.sign_in(api, email)
    params = _error(await _get(api, oauth.authorization(registered, prompt="none").params))
    assert params["error"] == "consent_required"


async def test_prompt_login_asks_again_even_when_signed_in(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    await oauth.sign_in(api, email)
    auth = oauth.authorization(registered, prompt="login")
    r = await _get(api, auth.params)
    assert r.headers["location"].startswith("/login?flow=")
    page = await api.client.get(r.headers["location"])
    assert page.status_code == 200  # the form, although signed in
    params = oauth.callback(await oauth.follow(api, r, email=email))
    assert params["code"]


async def _age_sessions(api: Api, seconds: int) -> None:
    """Pretend every sign-in happened ``seconds`` ago."""
    async with api.services.db.transaction() as s:
        await s.execute(update(Session).values(auth_time=utcnow() - timedelta(seconds=seconds)))


async def test_max_age_is_honoured(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    await oauth.sign_in(api, email)
    await _age_sessions(api, 600)
    # Within max_age: straight to the client.
    auth = oauth.authorization(registered, max_age="3600")
    assert oauth.callback(await _get(api, auth.params))["code"]
    # Beyond it: sign in again, and the ID token's auth_time is the new sign-in.
    auth = oauth.authorization(registered, max_age="60")
    r = await _get(api, auth.params)
    assert r.headers["location"].startswith("/login?flow=")
    params = oauth.callback(await oauth.follow(api, r, email=email))
    token = await oauth.token(
        api,
        registered,
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=registered.redirect_uri,
        code_verifier=auth.verifier,
    )
    claims = await oauth.verify_id_token(api, token.json()["id_token"], registered.client_id)
    assert claims["iat"] - claims["auth_time"] < 60


async def test_max_age_zero_always_signs_in_and_then_completes(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    await oauth.sign_in(api, email)
    auth = oauth.authorization(registered, max_age="0")
    r = await _get(api, auth.params)
    assert r.headers["location"].startswith("/login?flow=")
    assert oauth.callback(await oauth.follow(api, r, email=email))["code"]


async def test_acr_values_beyond_the_session_ask_for_a_sign_in_once(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    await oauth.sign_in(api, email)
    met = oauth.authorization(registered, acr_values="aal1")
    assert oauth.callback(await _get(api, met.params))["code"]
    auth = oauth.authorization(registered, acr_values="aal2")
    r = await _get(api, auth.params)
    assert r.headers["location"].startswith("/login?flow=")
    params = oauth.callback(await oauth.follow(api, r, email=email))
    token = await oauth.token(
        api,
        registered,
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=registered.redirect_uri,
        code_verifier=auth.verifier,
    )
    claims = await oauth.verify_id_token(api, token.json()["id_token"], registered.client_id)
    assert claims["acr"] == "aal1"  # what the sign-in reached; step-up comes with MFA


# ---- consent ---------------------------------------------------------------------------------


async def test_consent_is_asked_once_then_remembered(api: Api) -> None:
    registered = await oauth.client(api, first_party=False, name="Photo Printer")
    email = await oauth.new_user(api)
    await oauth.sign_in(api, email)
    auth = oauth.authorization(registered, scope="openid email")
    r = await oauth.follow(api, await _get(api, auth.params))
    assert r.status_code == 200
    assert "Photo Printer" in r.text
    assert "See your email address" in r.text
    assert ">Allow<" in r.text
    assert ">Deny<" in r.text
    fields = form(r.text, "/consent")
    fields["decision"] = "allow"
    done = await api.client.post("/consent", data=fields, headers={"origin": ORIGIN})
    assert oauth.callback(done)["code"]
    # The same scopes again: no page. A wider request asks again.
    assert oauth.callback(await _get(api, oauth.authorization(registered, scope="openid").params))
    wider = await oauth.follow(api, await _get(api, oauth.authorization(registered).params))
    assert 'action="/consent"' in wider.text
    # The account page lists it; Remove withdraws it (the next request asks again).
    account = await api.client.get("/account")
    assert "Connected apps" in account.text
    assert "Photo Printer" in account.text
    remove = f"/account/apps/{registered.client_id}/remove"
    fields = form(account.text, remove)
    r = await api.client.post(remove, data=fields, headers={"origin": ORIGIN})
    assert r.status_code == 200
    assert "Photo Printer" not in r.text
    again = await oauth.follow(
        api, await _get(api, oauth.authorization(registered, scope="openid").params)
    )
    assert 'action="/consent"' in again.text


async def test_deny_answers_access_denied(api: Api) -> None:
    registered = await oauth.client(api, first_party=False)
    email = await oauth.new_user(api)
    auth = oauth.authorization(registered)
    r = await oauth.authorize(api, auth, email=email, consent="deny")
    params = _error(r)
    assert params["error"] == "access_denied"
    assert params["state"] == auth.state


async def test_first_party_clients_never_ask(api: Api) -> None:
    registered = await oauth.client(api, first_party=True)
    email = await oauth.new_user(api)
    r = await oauth.authorize(api, oauth.authorization(registered), email=email, consent=None)
    assert oauth.callback(r)["code"]


async def test_a_parked_request_cannot_be_continued_by_another_browser(api: Api) -> None:
    registered = await oauth.client(api)
    r = await _get(api, oauth.authorization(registered).params)
    login = r.headers["location"]
    import httpx

    other = httpx.AsyncClient(transport=api.client._transport, base_url="http://testserver")
    async with other:
        page = await other.get(login)
    assert page.status_code == 410  # flow-expired: bound to the first browser
