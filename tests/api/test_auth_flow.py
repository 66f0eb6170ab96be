"""The public contract of API v1, through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
import uuid

import pytest
from prometheus_client import REGISTRY

from tests.support.api import Api
from tests.support.mail import mail_token
from tests.support.problems import assert_problem

PASSWORD = "Tr0ub4dor&3-horse"


# ---- registration --------------------------------------------------------------------------


async def test_register_accepts_and_mails_a_verification_link(api: Api) -> None:
    r = await api.register("Ada.Lovelace@Example.COM", PASSWORD, name="Ada")
    assert r.status_code == 202
    assert r.content == b""  # the same answer whether or not the address has an account
    mails = await api.mail()
    assert len(mails) == 1
    assert "To: ada.lovelace@example.com" in mails[0]
    assert "/verify-email?token=" in mails[0]
    login = (await api.login("ada.lovelace@example.com", PASSWORD)).json()
    me = (await api.client.get("/v1/users/me", headers=api.bearer(login["access_token"]))).json()
    assert set(me) == {"id", "email", "email_verified", "name", "created_at"}
    assert me["email"] == "ada.lovelace@example.com"
    assert me["email_verified"] is False
    assert me["name"] == "Ada"
    uuid.UUID(me["id"])


async def test_register_a_taken_address_in_any_case_answers_alike_and_mails_its_owner(
    api: Api,
) -> None:
    first = await api.register("bob@example.com", PASSWORD)
    again = [
        await api.register(email, "another pass phrase")
        for email in ("BOB@example.com", "  bob@EXAMPLE.com ")
    ]
    assert [r.status_code for r in (first, *again)] == [202, 202, 202]
    assert {r.content for r in (first, *again)} == {b""}
    mails = await api.mail()
    assert len(mails) == 3
    # The queue may deliver them in any order: one verification, two notices to the owner.
    verifications = [m for m in mails if "/verify-email?token=" in m]
    notices = [m for m in mails if m not in verifications]
    assert (len(verifications), len(notices)) == (1, 2)
    for notice in notices:
        assert "To: bob@example.com" in notice
        assert "Someone tried to create an account with your address" in notice
        assert "/reset-password?token=" in notice
    # Nothing of the account changed: the first password still signs in, the second never.
    assert (await api.login("bob@example.com", PASSWORD)).status_code == 200
    assert (await api.login("bob@example.com", "another pass phrase")).status_code == 401


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 8"),
        ("password", "too common"),
        ("x" * 129, "at most 128"),
        ("carol-secret-carol", "email"),
    ],
)
async def test_register_refuses_weak_passwords_with_reasons(
    api: Api, password: str, reason: str
) -> None:
    r = await api.register("carol@example.com", password)
    body = assert_problem(r, 422, "weak-password")
    reasons = body["errors"][0]["reasons"]
    assert any(reason in r for r in reasons), reasons
    if password != "password":  # the word itself is in the problem type
        assert password not in r.text


async def test_register_refuses_invalid_email(api: Api) -> None:
    body = assert_problem(await api.register("not-an-email", PASSWORD), 422, "invalid-email")
    assert body["errors"][0]["field"] == "email"


async def test_concurrent_registrations_of_one_address_make_one_account(api: Api) -> None:
    results = await asyncio.gather(*(api.register("race@example.com", PASSWORD) for _ in range(4)))
    assert [r.status_code for r in results] == [202] * 4
    from sqlalchemy import func, select

    from auth_service.accounts.models import User

    async with api.services.db.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(User)) == 1
    mails = await api.mail()
    assert sum("/verify-email?token=" in m for m in mails) == 1


async def test_email_verification_link_verifies_once(api: Api) -> None:
    await api.register("dave@example.com", PASSWORD)
    token = mail_token(await api.mail(), "/verify-email")
    r = await api.client.post("/v1/auth/email/verify", json={"token": token})
    assert r.status_code == 204
    login = (await api.login("dave@example.com", PASSWORD)).json()
    me = await api.client.get("/v1/users/me", headers=api.bearer(login["access_token"]))
    assert me.json()["email_verified"] is True
    again = await api.client.post("/v1/auth/email/verify", json={"token": token})
    assert_problem(again, 400, "invalid-one-time-token")


async def test_resend_verification_sends_a_new_link_that_supersedes_the_old(api: Api) -> None:
    user = await api.user()
    first = mail_token(await api.mail(), "/verify-email")
    r = await api.client.post("/v1/auth/email/resend", headers=api.bearer(user["access_token"]))
    assert r.status_code == 202
    mails = await api.mail()
    assert len(mails) == 2
    second = mail_token(mails[1:], "/verify-email")
    assert first != second
    assert_problem(
        await api.client.post("/v1/auth/email/verify", json={"token": first}),
        400,
        "invalid-one-time-token",
    )
    assert (
        await api.client.post("/v1/auth/email/verify", json={"token": second})
    ).status_code == 204


# ---- login -----------------------------------------------------------------------------------


async def test_login_returns_tokens_and_is_not_cacheable(api: Api) -> None:
    await api.register("erin@example.com", PASSWORD)
    r = await api.login("ERIN@example.com", PASSWORD)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert len(body["refresh_token"]) >= 43  # 256 bits, base64url
    assert body["access_token"].count(".") == 2
    uuid.UUID(body["session_id"])


async def test_wrong_password_and_unknown_email_are_indistinguishable(api: Api) -> None:
    await api.register("frank@example.com", PASSWORD)
    wrong = await api.login("frank@example.com", "not-the-password")
    unknown = await api.login("nobody@example.com", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert {k: v for k, v in wrong.json().items() if k != "instance"} == {
        k: v for k, v in unknown.json().items() if k != "instance"
    }
    assert wrong.headers.get("www-authenticate") == unknown.headers.get("www-authenticate")


def _verifications() -> float:
    return (
        REGISTRY.get_sample_value(
            "auth_password_hash_duration_seconds_count", {"operation": "verify"}
        )
        or 0.0
    )


async def test_unknown_email_costs_a_password_verification(api: Api) -> None:
    """An unknown email runs one argon2 verification, as a wrong password does (counted, not
    timed: the timing itself is test_unknown_email_takes_as_long_as_a_wrong_password)."""
    await api.register("grace@example.com", PASSWORD)
    await api.login("ghost@example.com", "wrong-password-123")  # the dummy hash is made once
    for email in ("grace@example.com", "ghost@example.com", "ghost2@example.com"):
        before = _verifications()
        assert (await api.login(email, "wrong-password-123")).status_code == 401
        assert _verifications() - before == 1, email


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "passwords": {"argon2_memory_cost_kib": 65536, "argon2_time_cost": 3},
            "lockout": {"enabled": False},
        }
    ],
    indirect=True,
)
async def test_unknown_email_takes_as_long_as_a_wrong_password(api: Api) -> None:
    """With real argon2 cost, an unknown email takes about as long as a wrong password.

    Wall-clock medians: slow (a loaded machine stretches both sides alike, but not always).
    """
    await api.register("grace@example.com", PASSWORD)

    async def timed(email: str) -> float:
        start = time.perf_counter()
        r = await api.login(email, "wrong-password-123")
        assert r.status_code == 401
        return time.perf_counter() - start

    await timed("grace@example.com")  # warm-up: connections, caches
    await timed("ghost@example.com")
    known = [await timed("grace@example.com") for _ in range(5)]
    unknown = [await timed(f"ghost{i}@example.com") for i in range(5)]
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2.0, (known, unknown)


# ---- refresh, logout, sessions ---------------------------------------------------------------


async def test_refresh_rotates_and_a_replayed_token_revokes_the_session(api: Api) -> None:
    user = await api.user()
    first = user["refresh_token"]
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    second = r.json()
    assert second["refresh_token"] != first
    assert second["session_id"] == user["session_id"]
    assert_problem(
        await api.client.post("/v1/auth/refresh", json={"refresh_token": first}),
        401,
        "refresh-token-reused",
    )
    # The whole session is gone: the newest refresh token and the access token stop working.
    assert_problem(
        await api.client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}),
        401,
        "invalid-refresh-token",
    )
    assert_problem(
        await api.client.get("/v1/users/me", headers=api.bearer(second["access_token"])),
        401,
        "invalid-token",
    )
    events = await api.services.audit.query(event_type="refresh.reuse_detected")
    assert events[1] == 1


async def test_exactly_one_of_concurrent_refreshes_of_one_token_succeeds(api: Api) -> None:
    user = await api.user()
    results = await asyncio.gather(
        *(
            api.client.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]})
            for _ in range(5)
        )
    )
    codes = [r.status_code for r in results]
    assert codes.count(200) == 1, codes
    assert all(c in (200, 401) for c in codes), codes


@pytest.mark.parametrize(
    "settings_overrides", [{"tokens": {"refresh_reuse_grace_seconds": 30}}], indirect=True
)
async def test_reuse_grace_window_serves_parallel_tabs(api: Api) -> None:
    user = await api.user()
    a = await api.client.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]})
    b = await api.client.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert a.status_code == b.status_code == 200
    assert a.json()["session_id"] == b.json()["session_id"]
    me = await api.client.get("/v1/users/me", headers=api.bearer(b.json()["access_token"]))
    assert me.status_code == 200


async def test_unknown_refresh_token_is_401(api: Api) -> None:
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": "x" * 43})
    assert_problem(r, 401, "invalid-refresh-token")


@pytest.mark.parametrize(
    "settings_overrides", [{"tokens": {"refresh_idle_ttl_seconds": 60}}], indirect=True
)
async def test_idle_session_cannot_refresh(api: Api) -> None:
    user = await api.user()
    from sqlalchemy import update

    from auth_service.db.base import utcnow
    from auth_service.sessions.models import Session

    async with api.services.db.transaction() as s:
        await s.execute(
            update(Session)
            .where(Session.id == uuid.UUID(user["session_id"]))
            .values(last_used_at=utcnow().replace(year=utcnow().year - 1))
        )
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert_problem(r, 401, "invalid-refresh-token")


async def test_logout_revokes_the_session(api: Api) -> None:
    user = await api.user()
    r = await api.client.post("/v1/auth/logout", json={"refresh_token": user["refresh_token"]})
    assert r.status_code == 204
    assert_problem(
        await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"])),
        401,
        "invalid-token",
    )
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert r.status_code == 401


async def test_sessions_list_and_revoke(api: Api) -> None:
    user = await api.user()
    other = (await api.login(user["email"], user["password"])).json()
    headers = api.bearer(user["access_token"])
    r = await api.client.get("/v1/sessions", headers=headers)
    assert r.status_code == 200
    sessions = {s["id"]: s for s in r.json()}
    assert set(sessions) == {user["session_id"], other["session_id"]}
    assert sessions[user["session_id"]]["current"] is True
    assert sessions[user["session_id"]]["ip"] == "203.0.113.7"
    r = await api.client.delete(f"/v1/sessions/{other['session_id']}", headers=headers)
    assert r.status_code == 204
    assert (
        await api.client.get("/v1/users/me", headers=api.bearer(other["access_token"]))
    ).status_code == 401
    assert_problem(
        await api.client.delete(f"/v1/sessions/{other['session_id']}", headers=headers),
        404,
        "session-not-found",
    )
    # Someone else's session cannot be revoked (and looks like it does not exist).
    stranger = await api.user()
    assert_problem(
        await api.client.delete(f"/v1/sessions/{stranger['session_id']}", headers=headers),
        404,
        "session-not-found",
    )


# ---- profile and passwords -------------------------------------------------------------------


async def test_me_and_update_profile(api: Api) -> None:
    user = await api.user()
    headers = api.bearer(user["access_token"])
    r = await api.client.patch("/v1/users/me", json={"name": "Héloïse 🚀"}, headers=headers)
    assert r.status_code == 200
    assert r.json()["name"] == "Héloïse 🚀"
    assert (await api.client.get("/v1/users/me", headers=headers)).json()["name"] == "Héloïse 🚀"


async def test_me_requires_a_bearer_token(api: Api) -> None:
    r = await api.client.get("/v1/users/me")
    assert_problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_problem(
        await api.client.get("/v1/users/me", headers={"Authorization": "Basic abc"}),
        401,
        "unauthenticated",
    )


async def test_password_change_revokes_other_sessions_only(api: Api) -> None:
    user = await api.user()
    other = (await api.login(user["email"], user["password"])).json()
    headers = api.bearer(user["access_token"])
    body = {"current_password": user["password"], "new_password": "a whole new passphrase"}
    assert (
        await api.client.post("/v1/auth/password/change", json=body, headers=headers)
    ).status_code == 204
    assert (await api.client.get("/v1/users/me", headers=headers)).status_code == 200
    assert (
        await api.client.get("/v1/users/me", headers=api.bearer(other["access_token"]))
    ).status_code == 401
    assert (await api.login(user["email"], user["password"])).status_code == 401
    assert (await api.login(user["email"], "a whole new passphrase")).status_code == 200


async def test_password_change_needs_the_current_password(api: Api) -> None:
    user = await api.user()
    body = {"current_password": "wrong-password!", "new_password": "a whole new passphrase"}
    r = await api.client.post(
        "/v1/auth/password/change", json=body, headers=api.bearer(user["access_token"])
    )
    assert_problem(r, 401, "invalid-credentials")


async def test_forgot_password_answers_the_same_for_unknown_accounts(api: Api) -> None:
    await api.register("heidi@example.com", PASSWORD)
    known = await api.client.post("/v1/auth/password/forgot", json={"email": "heidi@example.com"})
    unknown = await api.client.post(
        "/v1/auth/password/forgot", json={"email": "nobody@example.com"}
    )
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    mails = await api.mail()
    assert sum("reset-password?token=" in m for m in mails) == 1


async def test_password_reset_is_single_use_and_revokes_all_sessions(api: Api) -> None:
    user = await api.user()
    await api.client.post("/v1/auth/password/forgot", json={"email": user["email"]})
    token = mail_token(await api.mail(), "/reset-password")
    # A weak choice is refused without spending the token.
    weak = await api.client.post(
        "/v1/auth/password/reset", json={"token": token, "new_password": "password"}
    )
    assert_problem(weak, 422, "weak-password")
    r = await api.client.post(
        "/v1/auth/password/reset", json={"token": token, "new_password": "brand new passphrase"}
    )
    assert r.status_code == 204
    again = await api.client.post(
        "/v1/auth/password/reset", json={"token": token, "new_password": "another passphrase"}
    )
    assert_problem(again, 400, "invalid-one-time-token")
    assert (
        await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))
    ).status_code == 401
    assert (await api.login(user["email"], "brand new passphrase")).status_code == 200


@pytest.mark.parametrize(
    "settings_overrides", [{"tokens": {"password_reset_ttl_seconds": 60}}], indirect=True
)
async def test_expired_reset_token_is_refused(api: Api) -> None:
    user = await api.user()
    await api.client.post("/v1/auth/password/forgot", json={"email": user["email"]})
    token = mail_token(await api.mail(), "/reset-password")
    from sqlalchemy import update

    from auth_service.accounts.models import OneTimeToken
    from auth_service.db.base import utcnow

    async with api.services.db.transaction() as s:
        await s.execute(update(OneTimeToken).values(expires_at=utcnow().replace(year=2000)))
    r = await api.client.post(
        "/v1/auth/password/reset", json={"token": token, "new_password": "brand new passphrase"}
    )
    assert_problem(r, 400, "invalid-one-time-token")


async def test_jwks_is_cacheable_and_lists_next_and_active_keys(api: Api) -> None:
    r = await api.client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    assert "max-age" in r.headers["cache-control"]
    keys = r.json()["keys"]
    # An active and a next key per algorithm: ES256 (access tokens), RS256 and EdDSA (ID
    # tokens, ADR 0702).
    assert sorted(k["alg"] for k in keys) == ["ES256", "ES256", "EdDSA", "EdDSA", "RS256", "RS256"]
    assert all(k["use"] == "sig" and k["kid"] for k in keys)
    assert all(not {"d", "p", "q", "dp", "dq", "qi"} & set(k) for k in keys)  # never private


async def test_security_headers_and_request_id(api: Api) -> None:
    r = await api.client.get("/.well-known/jwks.json", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    generated = await api.client.get("/.well-known/jwks.json", headers={"X-Request-ID": "bad id\n"})
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])


async def test_openapi_and_docs_are_served(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert "/v1/auth/login" in spec["paths"]
    assert (await api.client.get("/docs")).status_code == 200


async def test_management_probes(api: Api) -> None:
    assert (await api.management.get("/health/live")).status_code == 200
    assert (await api.management.get("/health/ready")).status_code == 200
    assert (await api.management.get("/health/started")).status_code == 200
    metrics = (await api.management.get("/metrics")).text
    assert "auth_http_requests_total" in metrics
    # The public app does not expose management endpoints.
    assert (await api.client.get("/metrics")).status_code == 404
