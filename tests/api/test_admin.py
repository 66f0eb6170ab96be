"""Admin API: role checks, users, audit events, key rotation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.admin import ADMIN_PASSWORD, signed_in_admin
from tests.support.api import Api
from tests.support.problems import assert_problem


@pytest.fixture
async def admin(api: Api) -> dict[str, Any]:
    return await signed_in_admin(api)


async def test_non_admins_get_403_and_anonymous_401(api: Api) -> None:
    user = await api.user()
    for method, path in [
        ("GET", "/v1/admin/users"),
        ("GET", f"/v1/admin/users/{uuid.uuid4()}"),
        ("PATCH", f"/v1/admin/users/{uuid.uuid4()}"),
        ("DELETE", f"/v1/admin/users/{uuid.uuid4()}"),
        ("GET", "/v1/admin/audit-events"),
        ("POST", "/v1/admin/keys/rotate"),
    ]:
        kwargs: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
        r = await api.client.request(
            method, path, headers=api.bearer(user["access_token"]), **kwargs
        )
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["type"].endswith("/forbidden")
        r = await api.client.request(method, path, **kwargs)
        assert r.status_code == 401, (method, path)


async def test_list_users_paginates_and_filters(api: Api, admin: dict[str, Any]) -> None:
    for i in range(5):
        await api.register(f"member{i}@corp.example", "Tr0ub4dor&3-horse")
    await api.register("outsider@else.example", "Tr0ub4dor&3-horse")
    r = await api.client.get("/v1/admin/users", params={"limit": 2}, headers=admin["headers"])
    page = r.json()
    assert r.status_code == 200
    assert page["total"] == 7
    assert page["limit"] == 2
    assert len(page["items"]) == 2
    r = await api.client.get(
        "/v1/admin/users", params={"email": "CORP.example", "limit": 50}, headers=admin["headers"]
    )
    emails = [u["email"] for u in r.json()["items"]]
    assert sorted(emails) == [f"member{i}@corp.example" for i in range(5)]
    # LIKE wildcards in the filter are literal characters, not patterns.
    r = await api.client.get("/v1/admin/users", params={"email": "%"}, headers=admin["headers"])
    assert r.json()["total"] == 0
    r = await api.client.get("/v1/admin/users", params={"limit": 0}, headers=admin["headers"])
    assert r.status_code == 422


async def test_get_user_shows_one_account_as_admins_see_it(api: Api, admin: dict[str, Any]) -> None:
    r = await api.register("Shown@Example.com", "Tr0ub4dor&3-horse", name="Shown")
    assert r.status_code == 202
    login = await api.login("shown@example.com", "Tr0ub4dor&3-horse")
    me = await api.client.get("/v1/users/me", headers=api.bearer(login.json()["access_token"]))
    user_id = me.json()["id"]
    r = await api.client.get(f"/v1/admin/users/{user_id}", headers=admin["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {
        "id",
        "email",
        "email_verified",
        "name",
        "created_at",
        "status",
        "roles",
        "last_login_at",
    }
    assert body["id"] == user_id
    assert body["email"] == "shown@example.com"
    assert body["name"] == "Shown"
    assert body["email_verified"] is False
    assert body["status"] == "active"
    assert body["roles"] == []
    assert body["last_login_at"] is not None
    # The admin's own account, roles included.
    me = (await api.client.get("/v1/users/me", headers=admin["headers"])).json()
    r = await api.client.get(f"/v1/admin/users/{me['id']}", headers=admin["headers"])
    assert r.status_code == 200
    assert r.json()["roles"] == ["admin"]
    r = await api.client.get(f"/v1/admin/users/{uuid.uuid4()}", headers=admin["headers"])
    assert_problem(r, 404, "user-not-found")


async def test_disable_revokes_sessions_and_blocks_login(api: Api, admin: dict[str, Any]) -> None:
    user = await api.user()
    me = (await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))).json()
    r = await api.client.patch(
        f"/v1/admin/users/{me['id']}", json={"status": "disabled"}, headers=admin["headers"]
    )
    assert r.status_code == 200
    assert r.json()["status"] == "disabled"
    assert (
        await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))
    ).status_code == 401
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert r.status_code == 401
    # A disabled account is only revealed to whoever knows the password.
    r = await api.login(user["email"], user["password"])
    assert r.status_code == 403
    assert r.json()["type"].endswith("/account-disabled")
    assert (await api.login(user["email"], "wrong password")).status_code == 401
    r = await api.client.patch(
        f"/v1/admin/users/{me['id']}", json={"status": "active"}, headers=admin["headers"]
    )
    assert (await api.login(user["email"], user["password"])).status_code == 200


async def test_grant_admin_role_takes_effect_without_waiting_for_token_expiry(
    api: Api, admin: dict[str, Any]
) -> None:
    user = await api.user()
    me = (await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))).json()
    r = await api.client.patch(
        f"/v1/admin/users/{me['id']}", json={"roles": ["admin"]}, headers=admin["headers"]
    )
    assert r.json()["roles"] == ["admin"]
    # Admin routes re-read roles, so the old token works now and stops when the role goes.
    assert (
        await api.client.get("/v1/admin/users", headers=api.bearer(user["access_token"]))
    ).status_code == 200
    await api.client.patch(
        f"/v1/admin/users/{me['id']}", json={"roles": []}, headers=admin["headers"]
    )
    assert (
        await api.client.get("/v1/admin/users", headers=api.bearer(user["access_token"]))
    ).status_code == 403


async def test_unknown_role_is_a_validation_error(api: Api, admin: dict[str, Any]) -> None:
    user = await api.user()
    me = (await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))).json()
    r = await api.client.patch(
        f"/v1/admin/users/{me['id']}", json={"roles": ["root"]}, headers=admin["headers"]
    )
    assert r.status_code == 422


async def test_last_admin_cannot_remove_themselves(api: Api, admin: dict[str, Any]) -> None:
    me = (await api.client.get("/v1/users/me", headers=admin["headers"])).json()
    r = await api.client.patch(
        f"/v1/admin/users/{me['id']}", json={"roles": []}, headers=admin["headers"]
    )
    assert r.status_code == 409
    assert r.json()["type"].endswith("/last-admin")
    r = await api.client.delete(f"/v1/admin/users/{me['id']}", headers=admin["headers"])
    assert r.status_code == 409
    assert (await api.client.get("/v1/admin/users", headers=admin["headers"])).status_code == 200


async def test_delete_user(api: Api, admin: dict[str, Any]) -> None:
    user = await api.user()
    me = (await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))).json()
    assert (
        await api.client.delete(f"/v1/admin/users/{me['id']}", headers=admin["headers"])
    ).status_code == 204
    assert (
        await api.client.get(f"/v1/admin/users/{me['id']}", headers=admin["headers"])
    ).status_code == 404
    assert (await api.login(user["email"], user["password"])).status_code == 401
    assert (
        await api.client.delete(f"/v1/admin/users/{me['id']}", headers=admin["headers"])
    ).status_code == 404


async def test_audit_events_record_who_did_what_without_secrets(
    api: Api, admin: dict[str, Any]
) -> None:
    user = await api.user()
    await api.login(user["email"], "wrong password")
    me = (await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))).json()
    r = await api.client.get(
        "/v1/admin/audit-events", params={"user_id": me["id"]}, headers=admin["headers"]
    )
    assert r.status_code == 200
    items = r.json()["items"]
    types = [e["type"] for e in items]
    assert {"user.registered", "login.succeeded", "login.failed"} <= set(types)
    failed = next(e for e in items if e["type"] == "login.failed")
    assert failed["outcome"] == "failure"
    assert failed["ip"] == "203.0.113.7"
    assert failed["request_id"]
    assert user["password"] not in r.text
    assert "wrong password" not in r.text
    assert user["refresh_token"] not in r.text
    r = await api.client.get(
        "/v1/admin/audit-events",
        params={"type": "login.failed", "limit": 1},
        headers=admin["headers"],
    )
    assert [e["type"] for e in r.json()["items"]] == ["login.failed"]
    r = await api.client.get(
        "/v1/admin/audit-events", params={"since": "2999-01-01T00:00:00Z"}, headers=admin["headers"]
    )
    assert r.json()["total"] == 0
    # Naive timestamps are refused with a clear 422, never compared wrongly.
    r = await api.client.get(
        "/v1/admin/audit-events", params={"since": "2020-01-01T00:00:00"}, headers=admin["headers"]
    )
    assert r.status_code == 422


async def test_key_rotation_publishes_next_key_before_it_signs(
    api: Api, admin: dict[str, Any]
) -> None:
    before = {k["kid"] for k in (await api.client.get("/.well-known/jwks.json")).json()["keys"]}
    old_token = admin["access_token"]
    r = await api.client.post("/v1/admin/keys/rotate", headers=admin["headers"])
    assert r.status_code == 200
    new_kid = r.json()["active_kid"]
    assert new_kid in before, "the key that now signs was published before the rotation"
    after = {k["kid"] for k in (await api.client.get("/.well-known/jwks.json")).json()["keys"]}
    assert before < after  # old active stays published as retired; a new next appears
    assert (await api.client.get("/v1/users/me", headers=api.bearer(old_token))).status_code == 200
    fresh = (await api.login(admin["email"], ADMIN_PASSWORD)).json()["access_token"]
    import jwt

    assert jwt.get_unverified_header(fresh)["kid"] == new_kid
    events = await api.services.audit.query(event_type="keys.rotated")
    assert events[1] == 1
