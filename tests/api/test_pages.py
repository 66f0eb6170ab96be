"""The hosted pages over HTTP, on SQLite and PostgreSQL: the same services and rules as the
JSON API, behind forms with anti-forgery tokens. Browser journeys are in tests/browser."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from auth_service.accounts.models import User
from tests.support.api import Api
from tests.support.pages import alert, form, parse, submit

PASSWORD = "Tr0ub4dor&3-horse"
NEW_PASSWORD = "a-brand-new-Passw0rd!"


def _link(mail: str, path: str) -> str:
    match = re.search(rf"https?://[^/\s]+({path}\?token=[A-Za-z0-9_-]+)", mail)
    assert match, mail
    return match.group(1)


async def _sign_in(api: Api, email: str, password: str = PASSWORD, **fields: str) -> httpx.Response:
    return await submit(
        api.client, "/login", "/login", {"email": email, "password": password, **fields}
    )


async def _registered(api: Api, email: str | None = None) -> str:
    email = email or f"page-{uuid.uuid4().hex[:8]}@example.com"
    r = await submit(api.client, "/register", "/register", {"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return email


# ---- every page ------------------------------------------------------------------------------

PAGES = [
    "/login",
    "/register",
    "/forgot-password",
    "/reset-password?token=x",
    "/verify-email?token=x",
]


@pytest.mark.parametrize("path", PAGES)
async def test_pages_load_nothing_from_another_origin_and_are_not_cached(
    api: Api, path: str
) -> None:
    r = await api.client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    # No inline script or style, and every asset from our own origin: the one script is the
    # WebAuthn glue, loaded from us.
    scripts = re.findall(r"<script[^>]*>[^<]*</script>", r.text)
    assert set(scripts) <= {'<script src="/ui/static/webauthn.js" defer></script>'}
    assert r.text.count("<script") == len(scripts)
    assert "style=" not in r.text
    assert "<style" not in r.text
    for url in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        assert url.startswith(("/", "#")), url
        assert not url.startswith("//"), url
    for asset in ("/ui/static/auth.css", "/ui/theme.css", "/ui/logo"):
        assert (await api.client.get(asset)).status_code == 200


async def test_labels_and_buttons_are_the_documented_ones(api: Api) -> None:
    login = parse((await api.client.get("/login")).text)
    assert {"Email", "Password"} <= set(login.labels)
    assert "Sign in" in login.buttons
    html = (await api.client.get("/login")).text
    assert ">Forgot password?<" in html
    assert ">Create account<" in html
    register = parse((await api.client.get("/register")).text)
    assert {"Email", "Password", "Name"} <= set(register.labels)
    assert "Create account" in register.buttons
    assert "Send reset link" in parse((await api.client.get("/forgot-password")).text).buttons
    reset = parse((await api.client.get("/reset-password?token=x")).text)
    assert "New password" in reset.labels
    assert "Set password" in reset.buttons


# ---- sign-up, verification, sign-in -----------------------------------------------------------


async def test_sign_up_verify_and_sign_in(api: Api) -> None:
    email = await _registered(api, "Grace.Hopper@Example.com")
    [mail] = await api.mail()
    link = _link(mail, "/verify-email")

    # GET only shows the button: a mail scanner prefetching the link spends nothing.
    for _ in range(2):
        page = await api.client.get(link)
        assert page.status_code == 200
        assert "Verify email" in parse(page.text).buttons
    r = await api.client.post(
        "/verify-email",
        data=form(page.text, "/verify-email"),
        headers={"origin": "http://testserver"},
    )
    assert r.status_code == 200
    assert "confirmed" in r.text
    again = await api.client.post(
        "/verify-email",
        data=form(page.text, "/verify-email"),
        headers={"origin": "http://testserver"},
    )
    assert again.status_code == 400
    assert "already used" in again.text

    r = await _sign_in(api, email)
    assert r.status_code == 303
    assert r.headers["location"] == "/account"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("auth_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    account = await api.client.get("/account")
    assert account.status_code == 200
    assert "grace.hopper@example.com" in account.text
    assert ">verified<" in account.text
    # A signed-in browser opening /login goes to its account.
    again_login = await api.client.get("/login")
    assert again_login.status_code == 303
    assert again_login.headers["location"] == "/account"


async def test_the_browser_session_is_one_of_the_users_sessions(api: Api) -> None:
    user = await api.user()
    assert (await _sign_in(api, user["email"], user["password"])).status_code == 303
    listed = (await api.client.get("/v1/sessions", headers=api.bearer(user["access_token"]))).json()
    assert len(listed) == 2
    account = (await api.client.get("/account")).text
    assert account.count('class="current"') == 1
    # The API session (not this browser) gets a Sign out button of its own.
    assert f"/account/sessions/{user['session_id']}/revoke" in account


async def test_wrong_password_unknown_email_and_lockout_answer_like_the_api(api: Api) -> None:
    email = await _registered(api)
    wrong = await _sign_in(api, email, "not-the-password")
    unknown = await _sign_in(api, "nobody-here@example.com", "not-the-password")
    for r in (wrong, unknown):
        assert r.status_code == 401
        assert alert(r.text) == "The email or password is incorrect."
    for _ in range(5):
        await _sign_in(api, email, "not-the-password")
    locked = await _sign_in(api, email)
    assert locked.status_code == 429
    assert "Too many failed attempts" in alert(locked.text)
    assert "auth_session" not in locked.headers.get("set-cookie", "")


async def test_registration_shows_policy_reasons_next_to_the_field(api: Api) -> None:
    r = await submit(
        api.client, "/register", "/register", {"email": "weak@example.com", "password": "password"}
    )
    assert r.status_code == 422
    assert 'aria-invalid="true"' in r.text
    assert re.search(r'id="password-error"[^>]*>\s*<li>is too common', r.text)
    assert 'aria-describedby="password-hint password-error"' in r.text
    # The email is kept, the password never echoed.
    assert 'value="weak@example.com"' in r.text
    assert 'value="password"' not in r.text


async def test_control_characters_in_forms_are_refused_not_stored(api: Api) -> None:
    r = await submit(
        api.client,
        "/register",
        "/register",
        {"email": "nul@example.com", "password": PASSWORD, "name": "Ada\x00Lovelace"},
    )
    assert r.status_code == 422
    assert 'id="name-error"' in r.text
    r = await _sign_in(api, "a@example.com\x00", PASSWORD)
    assert r.status_code == 401


# ---- anti-forgery and redirects ----------------------------------------------------------------


async def test_a_forged_or_foreign_form_is_refused_with_a_page(api: Api) -> None:
    email = await _registered(api)
    page = await api.client.get("/login")
    data = {**form(page.text, "/login"), "email": email, "password": PASSWORD}
    cases = [
        ({**data, "csrf_token": "forged"}, {"origin": "http://testserver"}),
        ({k: v for k, v in data.items() if k != "csrf_token"}, {"origin": "http://testserver"}),
        (data, {"origin": "https://evil.example"}),
        (data, {"sec-fetch-site": "cross-site"}),
    ]
    for body, headers in cases:
        r = await api.client.post("/login", data=body, headers=headers)
        assert r.status_code == 403, (headers, r.status_code)
        assert r.headers["content-type"].startswith("text/html")
        assert "Reference:" in r.text
        assert "auth_session" not in r.headers.get("set-cookie", "")
    # A token from another browser (another anti-forgery cookie) is worthless here.
    other = httpx.AsyncClient(transport=api.client._transport, base_url="http://testserver")
    async with other:
        r = await other.post("/login", data=data, headers={"origin": "http://testserver"})
        assert r.status_code == 403
    ok = await api.client.post("/login", data=data, headers={"origin": "http://testserver"})
    assert ok.status_code == 303


@pytest.mark.parametrize(
    "return_to",
    [
        "https://evil.example/account",
        "//evil.example/account",
        "\\\\evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
        "/\t/evil.example",
        "http://127.0.0.1:8000@evil.example/",
    ],
)
async def test_return_to_never_leaves_the_site(api: Api, return_to: str) -> None:
    email = await _registered(api)
    r = await _sign_in(api, email, return_to=return_to)
    assert r.status_code == 303
    assert r.headers["location"] == "/account"


async def test_return_to_on_our_own_origin_is_followed(api: Api) -> None:
    email = await _registered(api)
    r = await _sign_in(api, email, return_to="http://127.0.0.1:8000/account?tab=sessions")
    assert r.headers["location"] == "/account?tab=sessions"
    page = await api.client.get("/login?return_to=/account%3Fx%3D1")
    assert page.status_code == 303
    assert page.headers["location"] == "/account?x=1"


# ---- recovery --------------------------------------------------------------------------------


async def test_forgot_password_answers_the_same_for_every_email(api: Api) -> None:
    email = await _registered(api)
    known = await submit(api.client, "/forgot-password", "/forgot-password", {"email": email})
    unknown = await submit(
        api.client, "/forgot-password", "/forgot-password", {"email": "ghost@example.com"}
    )
    malformed = await submit(
        api.client, "/forgot-password", "/forgot-password", {"email": "not an email"}
    )
    texts = {re.sub(r'value="[^"]*"', "", r.text) for r in (known, unknown, malformed)}
    assert {r.status_code for r in (known, unknown, malformed)} == {200}
    assert len(texts) == 1


async def test_reset_password_signs_every_session_out(api: Api) -> None:
    user = await api.user()
    assert (await _sign_in(api, user["email"], user["password"])).status_code == 303
    await submit(api.client, "/forgot-password", "/forgot-password", {"email": user["email"]})
    mails = await api.mail()
    link = _link(mails[-1], "/reset-password")
    page = await api.client.get(link)
    assert page.status_code == 200
    weak = await api.client.post(
        "/reset-password",
        data={**form(page.text, "/reset-password"), "new_password": "short"},
        headers={"origin": "http://testserver"},
    )
    assert weak.status_code == 422
    assert "at least 8 characters" in weak.text
    done = await api.client.post(
        "/reset-password",
        data={**form(page.text, "/reset-password"), "new_password": NEW_PASSWORD},
        headers={"origin": "http://testserver"},
    )
    assert done.status_code == 200
    assert "Every session" in done.text
    # The browser session and the API session are over; the new password works.
    assert (await api.client.get("/account")).status_code == 303
    me = await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))
    assert me.status_code == 401
    assert (await _sign_in(api, user["email"], NEW_PASSWORD)).status_code == 303
    page = await api.client.get(link)
    reused = await api.client.post(
        "/reset-password",
        data={**form(page.text, "/reset-password"), "new_password": "yet-another-Passw0rd"},
        headers={"origin": "http://testserver"},
    )
    assert reused.status_code == 400
    assert "already used" in reused.text


# ---- account ---------------------------------------------------------------------------------


async def test_account_name_password_sessions_and_sign_out(api: Api) -> None:
    user = await api.user()
    signed_in = await _sign_in(api, user["email"], user["password"])
    old_cookie = api.client.cookies.get("auth_session")

    r = await submit(api.client, "/account", "/account/profile", {"name": "Countess Ada"})
    assert r.status_code == 200
    assert "Your profile is saved." in r.text
    assert 'value="Countess Ada"' in r.text

    wrong = await submit(
        api.client,
        "/account",
        "/account/password",
        {"current_password": "nope-nope-nope", "new_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 400
    assert 'id="current_password-error"' in wrong.text
    changed = await submit(
        api.client,
        "/account",
        "/account/password",
        {"current_password": user["password"], "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 200
    assert "other sessions are signed out" in changed.text
    # The other (API) session is revoked; this browser got a new session id in its cookie.
    me = await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))
    assert me.status_code == 401
    assert api.client.cookies.get("auth_session") != old_cookie
    stale = httpx.AsyncClient(
        transport=api.client._transport,
        base_url="http://testserver",
        cookies={"auth_session": old_cookie or ""},
    )
    async with stale:
        assert (await stale.get("/account")).status_code == 303
    assert signed_in.status_code == 303

    out = await submit(api.client, "/account", "/logout", {})
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert (await api.client.get("/account")).status_code == 303
    confirm = await api.client.get("/logout")
    assert confirm.status_code == 303  # signed out already: nothing to confirm


async def test_sign_out_another_session_from_the_account_page(api: Api) -> None:
    user = await api.user()
    await _sign_in(api, user["email"], user["password"])
    r = await submit(api.client, "/account", f"/account/sessions/{user['session_id']}/revoke", {})
    assert r.status_code == 200
    assert "That session is signed out." in r.text
    me = await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))
    assert me.status_code == 401
    assert (await api.client.get("/account")).status_code == 200


async def test_delete_account_is_scheduled_mailed_and_cancellable(api: Api) -> None:
    """The page asks for the deletion as DELETE /v1/users/me does: after the grace period,
    other sessions ended, the owner mailed; the page then offers to cancel."""
    user = await api.user()
    await _sign_in(api, user["email"], user["password"])
    page = await api.client.get("/account")
    assert "deleted 30 days after you ask" in page.text
    wrong = await submit(api.client, "/account", "/account/delete", {"password": "not-it-at-all"})
    assert wrong.status_code == 400
    assert 'id="delete-password-error"' in wrong.text
    assert not [m for m in await api.mail() if "Your account will be deleted" in m]

    done = await submit(api.client, "/account", "/account/delete", {"password": user["password"]})
    assert done.status_code == 200
    due = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    assert f"Your account will be deleted on {due}" in done.text
    assert 'id="deletion-pending"' in done.text
    assert "/account/delete/cancel" in done.text
    (told,) = [m for m in await api.mail() if "Your account will be deleted" in m]
    assert f"To: {user['email']}" in told
    # The other session (the API login) ended; this browser is still signed in.
    me = await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))
    assert me.status_code == 401
    again = await api.client.get("/account")
    assert again.status_code == 200
    assert 'id="deletion-pending"' in again.text

    cancelled = await submit(api.client, "/account", "/account/delete/cancel", {})
    assert cancelled.status_code == 200
    assert "The deletion of your account is cancelled." in cancelled.text
    assert 'id="deletion-pending"' not in cancelled.text
    async with api.services.db.sessionmaker() as s:
        due_at = await s.scalar(select(User.deletion_due_at).where(User.email == user["email"]))
    assert due_at is None
    assert (await api.login(user["email"], user["password"])).status_code == 200


# ---- languages -------------------------------------------------------------------------------


async def test_german_from_accept_language_the_switch_and_emails(api: Api) -> None:
    de = {"accept-language": "de-DE,de;q=0.9,en;q=0.5"}
    page = await api.client.get("/login", headers=de)
    assert '<html lang="de">' in page.text
    assert "Anmelden" in parse(page.text).buttons
    assert {"E-Mail", "Passwort"} <= set(parse(page.text).labels)

    switched = await api.client.get("/ui/language?lang=de&return_to=/register")
    assert switched.status_code == 303
    assert switched.headers["location"] == "/register"
    register = await api.client.get("/register")  # no Accept-Language: the switch decides
    assert "Konto erstellen" in parse(register.text).buttons
    r = await api.client.post(
        "/register",
        data={
            **form(register.text, "/register"),
            "email": "otto@example.com",
            "password": PASSWORD,
        },
        headers={"origin": "http://testserver"},
    )
    assert r.status_code == 200
    assert "Prüfen Sie Ihre E-Mails" in r.text
    [mail] = await api.mail()
    assert "Subject: Bestätigen Sie Ihre E-Mail-Adresse" in mail
    # A later email goes out in the language the user registered in.
    await api.client.get("/ui/language?lang=en&return_to=/login")
    await submit(api.client, "/forgot-password", "/forgot-password", {"email": "otto@example.com"})
    mails = await api.mail()
    assert "Subject: Setzen Sie Ihr Passwort zur=C3=BCck" in mails[-1] or "zurück" in mails[-1]


async def test_the_json_api_still_refuses_form_posts(api: Api) -> None:
    r = await api.client.post(
        "/v1/auth/login", data={"email": "a@example.com", "password": PASSWORD}
    )
    assert r.status_code == 415


@pytest.mark.parametrize(
    "settings_overrides",
    [{"ui": {"product_name": "Acme ID", "primary_color": "#aa3300"}}],
    indirect=True,
)
async def test_branding_comes_from_settings(api: Api, tmp_path: Path) -> None:
    page = await api.client.get("/login")
    assert "<title>Sign in · Acme ID</title>" in page.text
    theme = await api.client.get("/ui/theme.css")
    assert theme.headers["content-type"].startswith("text/css")
    assert "--primary: #aa3300;" in theme.text
    logo = await api.client.get("/ui/logo")
    assert logo.headers["content-type"] == "image/svg+xml"


async def test_a_logo_file_is_served_from_our_origin_under_a_strict_policy(
    api: Api, tmp_path: Path
) -> None:
    svg = tmp_path / "acme.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    api.services.settings = api.services.settings.model_copy(
        update={"ui": api.services.settings.ui.model_copy(update={"logo_file": svg})}
    )
    logo = await api.client.get("/ui/logo")
    assert logo.status_code == 200
    assert logo.headers["content-security-policy"].startswith("default-src 'none'")
    assert (await api.client.get("/ui/static/../../config/settings.py")).status_code == 404
