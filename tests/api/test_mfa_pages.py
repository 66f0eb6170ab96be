"""The hosted pages of MFA over HTTP, on both databases: the second step after "Sign in"
(code, recovery code, passkey), passkey sign-in from /login, /account/security (authenticator
app, recovery codes, passkeys), a pending flow continuing after the second step, German."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.api import Api
from tests.support.mfa import MFA_SETTINGS, ORIGIN, code_at, enrol_totp
from tests.support.pages import ORIGIN as PAGE_ORIGIN
from tests.support.pages import alert, form, parse, submit
from tests.support.webauthn_soft import SoftAuthenticator

MFA = pytest.mark.parametrize("settings_overrides", [MFA_SETTINGS], indirect=True)


async def sign_in(api: Api, email: str, password: str, **fields: str) -> httpx.Response:
    return await submit(
        api.client, "/login", "/login", {"email": email, "password": password, **fields}
    )


def flow_of(location: str) -> str:
    assert location.startswith("/login/mfa?"), location
    return parse_qs(urlsplit(location).query)["flow"][0]


@MFA
async def test_second_step_with_a_code(api: Api) -> None:
    user = await api.user()
    secret = await enrol_totp(api, user["access_token"])
    r = await sign_in(api, user["email"], user["password"])
    assert r.status_code == 303
    location = r.headers["location"]
    flow_of(location)
    assert "auth_session" not in r.headers.get("set-cookie", "")  # not signed in yet
    page = await api.client.get(location)
    assert page.status_code == 200
    found = parse(page.text)
    assert "Authentication code" in found.labels
    assert "Verify" in found.buttons
    assert "Use a recovery code" not in page.text  # no codes yet
    r = await submit(api.client, location, "/login/mfa", {"code": "000000"})
    assert r.status_code == 400
    assert alert(r.text)
    r = await submit(api.client, location, "/login/mfa", {"code": code_at(secret)})
    assert r.status_code == 303
    assert r.headers["location"] == "/account"
    account = await api.client.get("/account")
    assert account.status_code == 200
    assert "Manage sign-in methods" in account.text


@MFA
async def test_second_step_with_a_recovery_code_and_return_to(api: Api) -> None:
    user = await api.user()
    await enrol_totp(api, user["access_token"])
    r = await api.client.post("/v1/mfa/recovery-codes", headers=api.bearer(user["access_token"]))
    code = r.json()["codes"][0]
    r = await sign_in(api, user["email"], user["password"], return_to="/account/security")
    location = r.headers["location"]
    page = await api.client.get(location)
    assert "Use a recovery code" in page.text
    recovery = f"/login/mfa?flow={flow_of(location)}&method=recovery"
    page = await api.client.get(recovery)
    assert "Recovery code" in parse(page.text).labels
    r = await submit(api.client, recovery, "/login/mfa", {"recovery_code": code})
    assert r.status_code == 303
    assert r.headers["location"] == "/account/security"


@MFA
async def test_a_pending_flow_continues_after_the_second_step(api: Api) -> None:
    user = await api.user()
    secret = await enrol_totp(api, user["access_token"])
    await api.client.get("/login")  # the browser's anti-forgery cookie
    binding = "a:" + api.client.cookies["auth_csrf"]
    pending = await api.services.signin.start_flow(
        binding=binding, ttl_seconds=600, state={"continue_to": "/oauth/authorize?x=1"}
    )
    r = await submit(
        api.client,
        f"/login?flow={pending.id}",
        "/login",
        {"email": user["email"], "password": user["password"]},
    )
    location = r.headers["location"]
    assert flow_of(location) == str(pending.id)  # the same flow carries the second step
    r = await submit(api.client, location, "/login/mfa", {"code": code_at(secret)})
    assert r.headers["location"] == "/oauth/authorize?x=1"


@MFA
async def test_security_page_sets_up_an_authenticator_app(api: Api) -> None:
    user = await api.user()
    r = await sign_in(api, user["email"], user["password"])
    assert r.headers["location"] == "/account"
    page = await api.client.get("/account/security")
    assert page.status_code == 200
    found = parse(page.text)
    for button in ("Set up authenticator app", "Add passkey", "Generate recovery codes"):
        assert button in found.buttons
    assert "Passkey name" in found.labels
    assert '<script src="/ui/static/webauthn.js"' in page.text
    r = await submit(api.client, "/account/security", "/account/security/totp", {})
    assert r.status_code == 200
    assert "<svg" in r.text
    secret = re.search(r'id="totp-key">([A-Z2-7]+)<', r.text)
    assert secret is not None
    assert "otpauth://totp/" in r.text
    before = api.client.cookies["auth_session"]
    r = await submit(
        api.client,
        "/account/security",
        "/account/security/totp/confirm",
        {"code": code_at(secret.group(1))},
    )
    assert r.status_code == 200
    assert "Remove authenticator app" in parse(r.text).buttons
    assert api.client.cookies["auth_session"] != before  # a privilege change rotates it
    r = await submit(api.client, "/account/security", "/account/security/recovery-codes", {})
    codes = re.findall(r"<li><code>([a-z0-9-]{19})</code></li>", r.text)
    assert len(codes) == 10
    assert "10 recovery codes left." in r.text


@MFA
async def test_passkeys_on_the_pages(api: Api) -> None:
    user = await api.user()
    await sign_in(api, user["email"], user["password"])
    authenticator = SoftAuthenticator(ORIGIN)
    page = await api.client.get("/account/security")
    fields = form(page.text, "/account/security/passkeys")
    headers = {"origin": PAGE_ORIGIN}
    r = await api.client.post("/account/security/passkeys/options", data=fields, headers=headers)
    assert r.status_code == 200
    options = r.json()
    fields.update(
        registration_token=options["registration_token"],
        credential=json.dumps(authenticator.create(options["publicKey"])),
        name="My laptop",
    )
    r = await api.client.post("/account/security/passkeys", data=fields, headers=headers)
    assert r.status_code == 200, alert(r.text)
    found = parse(r.text)
    assert "Rename" in found.buttons
    assert "Remove" in found.buttons
    assert "New name for My laptop" in found.labels

    # Signed out, "Sign in with a passkey" on /login: no email, no password.
    await api.client.post("/logout", data=form(r.text, "/logout"), headers=headers)
    api.client.cookies.delete("auth_session")
    page = await api.client.get("/login")
    assert "Sign in with a passkey" in parse(page.text).buttons
    fields = form(page.text, "/login/passkey")
    r = await api.client.post("/login/passkey/options", data=fields, headers=headers)
    options = r.json()
    fields.update(
        flow=options["flow"], credential=json.dumps(authenticator.get(options["publicKey"]))
    )
    r = await api.client.post("/login/passkey", data=fields, headers=headers)
    assert r.status_code == 303, alert(r.text)
    assert (await api.client.get("/account")).status_code == 200

    # A passkey as the second step after the password.
    await api.client.post(
        "/logout", data=form((await api.client.get("/account")).text, "/logout"), headers=headers
    )
    r = await sign_in(api, user["email"], user["password"])
    location = r.headers["location"]
    page = await api.client.get(location)
    assert "Continue with a passkey" in parse(page.text).buttons  # passkey-only: its page
    options = json.loads(
        re.search(r'data-options="([^"]+)"', page.text).group(1).replace("&#34;", '"')
    )
    fields = form(page.text, "/login/mfa")
    fields["credential"] = json.dumps(authenticator.get(options))
    r = await api.client.post("/login/mfa", data=fields, headers=headers)
    assert r.status_code == 303, alert(r.text)


@pytest.mark.parametrize(
    "settings_overrides", [{**MFA_SETTINGS, "ui": {"default_locale": "de"}}], indirect=True
)
async def test_the_second_step_in_german(api: Api) -> None:
    user = await api.user()
    await enrol_totp(api, user["access_token"])
    r = await sign_in(api, user["email"], user["password"])
    page = await api.client.get(r.headers["location"])
    found = parse(page.text)
    assert "Bestätigungscode" in found.labels
    assert "Bestätigen" in found.buttons


@MFA
async def test_a_flow_asking_for_aal2_steps_up_a_signed_in_browser(api: Api) -> None:
    """What OIDC acr_values=aal2 will do: a signed-in aal1 browser goes to the second step,
    without the password, and continues with a new aal2 session."""
    user = await api.user()
    await sign_in(api, user["email"], user["password"])  # aal1: no factor yet
    secret = await enrol_totp(api, user["access_token"])
    cookie = api.client.cookies["auth_session"]
    before = await api.services.sessions.browser_session(cookie)
    assert before is not None
    assert before.acr == "aal1"
    pending = await api.services.signin.start_flow(
        binding="s:" + cookie,
        ttl_seconds=600,
        state={"continue_to": "/oauth/authorize?acr=1", "require_acr": "aal2"},
    )
    r = await api.client.get(f"/login?flow={pending.id}")
    assert r.status_code == 303
    assert flow_of(r.headers["location"]) == str(pending.id)
    r = await submit(api.client, r.headers["location"], "/login/mfa", {"code": code_at(secret)})
    assert r.headers["location"] == "/oauth/authorize?acr=1"
    after = await api.services.sessions.browser_session(api.client.cookies["auth_session"])
    assert after is not None
    assert after.acr == "aal2"
    assert list(after.amr) == ["pwd", "otp", "mfa"]
    assert await api.services.sessions.browser_session(cookie) is None  # replaced
