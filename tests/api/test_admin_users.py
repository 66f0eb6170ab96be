"""Admin API: creating accounts (with a password, or with an emailed link to choose one) and
sending a password-reset link, on SQLite and PostgreSQL. Both are audited."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.admin import signed_in_admin
from tests.support.api import Api
from tests.support.mail import mail_token
from tests.support.problems import assert_problem

NEW_PASSWORD = "Chosen-after-the-link-7"


@pytest.fixture
async def admin(api: Api) -> dict[str, Any]:
    return await signed_in_admin(api)


async def _events(
    api: Api, admin: dict[str, Any], user_id: str, kind: str | None = None
) -> list[dict[str, Any]]:
    """The audit events about ``user_id`` (of type ``kind``), read through the admin API."""
    params = {"user_id": user_id, **({"type": kind} if kind else {})}
    r = await api.client.get("/v1/admin/audit-events", params=params, headers=admin["headers"])
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def _link_token(api: Api, email: str) -> str:
    return mail_token([m for m in await api.mail() if f"To: {email}" in m], "/reset-password")


async def test_create_with_a_password(api: Api, admin: dict[str, Any]) -> None:
    body = {
        "email": "New.Admin@Example.com",
        "password": "a long enough pass phrase",
        "name": "New Admin",
        "roles": ["admin"],
        "email_verified": True,
    }
    r = await api.client.post("/v1/admin/users", json=body, headers=admin["headers"])
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["location"] == f"/v1/admin/users/{created['id']}"
    assert created["email"] == "new.admin@example.com"
    assert (created["name"], created["roles"], created["status"]) == (
        "New Admin",
        ["admin"],
        "active",
    )
    assert created["email_verified"] is True
    fetched = await api.client.get(r.headers["location"], headers=admin["headers"])
    assert fetched.json() == created
    # The new administrator signs in and uses the admin API.
    login = await api.login("new.admin@example.com", body["password"])
    assert login.status_code == 200, login.text
    listed = await api.client.get(
        "/v1/admin/users", headers=api.bearer(login.json()["access_token"])
    )
    assert listed.status_code == 200
    assert not await api.mail()  # an account with a password gets no mail

    [event] = [
        e for e in await _events(api, admin, created["id"]) if e["type"] == "admin.user_created"
    ]
    assert event["actor_user_id"] == admin["id"]
    assert event["details"] == {"admin": True, "verified": True, "credential": "password"}


async def test_create_without_a_password_mails_a_link_to_choose_one(
    api: Api, admin: dict[str, Any]
) -> None:
    r = await api.client.post(
        "/v1/admin/users", json={"email": "invited@example.com"}, headers=admin["headers"]
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["roles"], created["email_verified"]) == ([], False)
    # No password yet: nothing signs in (the same 401 as a wrong password).
    assert_problem(
        await api.login("invited@example.com", "anything at all"), 401, "invalid-credentials"
    )
    token = await _link_token(api, "invited@example.com")
    reset = await api.client.post(
        "/v1/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert reset.status_code == 204, reset.text
    assert (await api.login("invited@example.com", NEW_PASSWORD)).status_code == 200

    types = [e["type"] for e in await _events(api, admin, created["id"])]
    assert "admin.user_created" in types
    assert "admin.password_reset_sent" in types
    [event] = [
        e for e in await _events(api, admin, created["id"]) if e["type"] == "admin.user_created"
    ]
    assert event["details"]["credential"] == "none"


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        ({"email": "not an email", "password": "a long enough pass phrase"}, 422, "invalid-email"),
        ({"email": "weak@example.com", "password": "password"}, 422, "weak-password"),
        ({"email": "nul\u0000@example.com"}, 422, "validation-error"),
        ({"email": "x@example.com", "name": "line\nbreak"}, 422, "validation-error"),
        ({"email": "x@example.com", "roles": ["root"]}, 422, "validation-error"),
        ({"email": "x@example.com", "admin": True}, 422, "validation-error"),
        ({}, 422, "validation-error"),
    ],
    ids=[
        "invalid email",
        "weak",
        "NUL",
        "control character",
        "unknown role",
        "unknown field",
        "empty",
    ],
)
async def test_create_refusals(
    api: Api, admin: dict[str, Any], body: dict[str, Any], status: int, slug: str
) -> None:
    r = await api.client.post("/v1/admin/users", json=body, headers=admin["headers"])
    assert_problem(r, status, slug)
    listed = await api.client.get("/v1/admin/users", headers=admin["headers"])
    assert listed.json()["total"] == 1  # only the administrator


async def test_create_an_existing_email_is_409_and_only_admins_create(
    api: Api, admin: dict[str, Any]
) -> None:
    user = await api.user("taken@example.com")
    r = await api.client.post(
        "/v1/admin/users", json={"email": "TAKEN@example.com"}, headers=admin["headers"]
    )
    assert_problem(r, 409, "email-taken")
    body = {"email": "sneaky@example.com", "roles": ["admin"]}
    r = await api.client.post(
        "/v1/admin/users", json=body, headers=api.bearer(user["access_token"])
    )
    assert_problem(r, 403, "forbidden")
    assert_problem(await api.client.post("/v1/admin/users", json=body), 401, "unauthenticated")
    r = await api.client.post(
        f"/v1/admin/users/{admin['id']}/reset", headers=api.bearer(user["access_token"])
    )
    assert_problem(r, 403, "forbidden")


async def test_send_reset(api: Api, admin: dict[str, Any]) -> None:
    user = await api.user("forgetful@example.com")
    me = await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))
    user_id = me.json()["id"]
    path = f"/v1/admin/users/{user_id}/reset"
    first = await api.client.post(path, headers=admin["headers"])
    assert first.status_code == 202, first.text
    assert first.content == b""
    old = await _link_token(api, "forgetful@example.com")
    assert (await api.client.post(path, headers=admin["headers"])).status_code == 202
    mails = [m for m in await api.mail() if "/reset-password" in m]
    assert len(mails) == 2
    assert all("To: forgetful@example.com" in m for m in mails)
    new = mail_token(mails[1:], "/reset-password")
    # Only the newest link works, as with forgot-password.
    stale = await api.client.post(
        "/v1/auth/password/reset", json={"token": old, "new_password": NEW_PASSWORD}
    )
    assert_problem(stale, 400, "invalid-one-time-token")
    fresh = await api.client.post(
        "/v1/auth/password/reset", json={"token": new, "new_password": NEW_PASSWORD}
    )
    assert fresh.status_code == 204, fresh.text
    assert (await api.login("forgetful@example.com", NEW_PASSWORD)).status_code == 200

    sent = [
        e for e in await _events(api, admin, user_id) if e["type"] == "admin.password_reset_sent"
    ]
    assert len(sent) == 2
    assert all(e["actor_user_id"] == admin["id"] for e in sent)

    missing = await api.client.post(
        f"/v1/admin/users/{uuid.uuid4()}/reset", headers=admin["headers"]
    )
    assert_problem(missing, 404, "user-not-found")
    disabled = await api.client.patch(
        f"/v1/admin/users/{user_id}", json={"status": "disabled"}, headers=admin["headers"]
    )
    assert disabled.status_code == 200
    assert_problem(await api.client.post(path, headers=admin["headers"]), 409, "user-disabled")


@pytest.mark.parametrize(
    "settings_overrides", [{"features": {"password_reset": False}}], indirect=True
)
async def test_no_links_while_password_reset_is_off(api: Api, admin: dict[str, Any]) -> None:
    r = await api.client.post(
        "/v1/admin/users", json={"email": "invited@example.com"}, headers=admin["headers"]
    )
    assert_problem(r, 403, "feature-disabled")
    listed = await api.client.get("/v1/admin/users", headers=admin["headers"])
    assert listed.json()["total"] == 1  # nothing was created
    r = await api.client.post(f"/v1/admin/users/{admin['id']}/reset", headers=admin["headers"])
    assert_problem(r, 403, "feature-disabled")
    # With a password there is nothing to mail: the account is made.
    body = {"email": "direct@example.com", "password": "a long enough pass phrase"}
    r = await api.client.post("/v1/admin/users", json=body, headers=admin["headers"])
    assert r.status_code == 201, r.text
