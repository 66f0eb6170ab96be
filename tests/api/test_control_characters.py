"""Control characters in any string of a request are a 422 naming the field, on both databases.

PostgreSQL refuses NUL in text, so before the edge check a NUL that reached a query was a 500
(issue 12); the other C0 controls were stored. Every case runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from auth_service.security.text import REASON
from tests.support.api import Api

PASSWORD = "Tr0ub4dor&3-horse"
PROBLEM = "application/problem+json"
# NUL, the one PostgreSQL cannot store, and three that it stores but that forge output.
CONTROLS = ["\x00", "\x1b", "\n", "\x7f"]


def _refused(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["type"].endswith("/validation-error"), body
    assert {"field": field, "reasons": [REASON]} in body["errors"], body


@pytest.mark.parametrize("control", CONTROLS, ids=["nul", "esc", "newline", "del"])
async def test_anonymous_routes_refuse_control_characters(api: Api, control: str) -> None:
    email = f"ctl-{uuid.uuid4().hex[:8]}@example.com"
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/auth/register", {"email": email + control, "password": PASSWORD}, "email"),
        ("/v1/auth/register", {"email": email, "password": PASSWORD + control}, "password"),
        (
            "/v1/auth/register",
            {"email": email, "password": PASSWORD, "name": f"A{control}B"},
            "name",
        ),
        ("/v1/auth/login", {"email": email + control, "password": PASSWORD}, "email"),
        ("/v1/auth/login", {"email": email, "password": control + PASSWORD}, "password"),
        ("/v1/auth/password/forgot", {"email": control + email}, "email"),
        ("/v1/auth/refresh", {"refresh_token": "abc" + control}, "refresh_token"),
        ("/v1/auth/logout", {"refresh_token": control}, "refresh_token"),
        ("/v1/auth/password/reset", {"token": "t" + control, "new_password": PASSWORD}, "token"),
        (
            "/v1/auth/password/reset",
            {"token": "t", "new_password": PASSWORD + control},
            "new_password",
        ),
        ("/v1/auth/email/verify", {"token": control + "t"}, "token"),
    ]
    for path, body, field in cases:
        _refused(await api.client.post(path, json=body), field)
    # Nothing was created by the refused registrations.
    users, total = await api.services.accounts.users.list_users(email="ctl-", limit=10, offset=0)
    assert total == 0, users


@pytest.mark.parametrize("control", CONTROLS, ids=["nul", "esc", "newline", "del"])
async def test_authenticated_routes_refuse_control_characters(api: Api, control: str) -> None:
    user = await api.user()
    me = Api.bearer(user["access_token"])
    admin = await api.admin_headers()
    user_id = (await api.client.get("/v1/users/me", headers=me)).json()["id"]

    _refused(await api.client.patch("/v1/users/me", json={"name": control}, headers=me), "name")
    r = await api.client.post(
        "/v1/auth/password/change",
        json={"current_password": PASSWORD + control, "new_password": PASSWORD},
        headers=me,
    )
    _refused(r, "current_password")
    r = await api.client.patch(
        f"/v1/admin/users/{user_id}", json={"name": f"Eve{control}"}, headers=admin
    )
    _refused(r, "name")
    r = await api.client.get("/v1/admin/users", params={"email": control}, headers=admin)
    _refused(r, "query.email")
    r = await api.client.get("/v1/admin/audit-events", params={"type": control}, headers=admin)
    _refused(r, "query.type")

    # The refused renames changed nothing.
    r = await api.client.get(f"/v1/admin/users/{user_id}", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["name"] is None


async def test_nul_in_the_raw_query_string_is_refused(api: Api) -> None:
    # %00 exactly as the curl sent it, not re-encoded by a client library.
    admin = await api.admin_headers()
    for url, field in (
        ("/v1/admin/users?email=%00", "query.email"),
        ("/v1/admin/users?email=a%00b", "query.email"),
        ("/v1/admin/audit-events?type=%00", "query.type"),
    ):
        _refused(await api.client.get(url, headers=admin), field)


async def test_printable_unicode_is_still_accepted(api: Api) -> None:
    # Only C0 controls and DEL are refused: accents, emoji, right-to-left scripts and C1
    # code points are text a person may really have in a name.
    user = await api.user(password="Grüße aus Köln 😀 ok")
    me = Api.bearer(user["access_token"])
    for name in ("Zoë Ødegård", "山田 太郎", "عائشة", "emoji 😀", "c1 \x85 next line"):
        r = await api.client.patch("/v1/users/me", json={"name": name}, headers=me)
        assert r.status_code == 200, r.text
        assert r.json()["name"] == name
    admin = await api.admin_headers()
    r = await api.client.get("/v1/admin/users", params={"email": "ü"}, headers=admin)
    assert r.status_code == 200, r.text


async def test_the_rule_is_in_the_openapi_document(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    login = spec["components"]["schemas"]["LoginRequest"]["properties"]
    assert login["email"]["pattern"] == "^[^\\x00-\\x1f\\x7f]*$"
    assert login["password"]["pattern"] == "^[^\\x00-\\x1f\\x7f]*$"


def _strings_without_the_rule(
    schema: dict[str, object], schemas: dict[str, dict[str, object]], where: str, seen: set[str]
) -> list[str]:
    """Every string in a request schema, recursively, whose pattern does not refuse controls."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return _strings_without_the_rule(schemas[name], schemas, name, seen)
    found = []
    fixed = "enum" in schema or "const" in schema or "format" in schema
    if schema.get("type") == "string" and not fixed:
        pattern = schema.get("pattern")
        if not isinstance(pattern, str) or "\\x00-\\x1f\\x7f" not in pattern:
            found.append(where)
    for key in ("anyOf", "oneOf", "allOf"):
        for i, part in enumerate(schema.get(key) or []):  # type: ignore[attr-defined]
            found += _strings_without_the_rule(part, schemas, f"{where}[{i}]", seen)
    items = schema.get("items")
    if isinstance(items, dict):
        found += _strings_without_the_rule(items, schemas, f"{where}[]", seen)
    for name, prop in (schema.get("properties") or {}).items():  # type: ignore[attr-defined]
        found += _strings_without_the_rule(prop, schemas, f"{where}.{name}", seen)
    return found


async def test_every_string_a_request_body_takes_refuses_controls(api: Api) -> None:
    # A domain added later (OAuth clients, MFA) must not let a NUL reach PostgreSQL: every
    # JSON request body's strings carry the rule, so the fuzzer and clients know it too.
    spec = (await api.client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    missing = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            body = content.get("application/json", {}).get("schema")
            if body:
                found = _strings_without_the_rule(body, schemas, f"{method} {path}", set())
                missing += found
    assert missing == []
