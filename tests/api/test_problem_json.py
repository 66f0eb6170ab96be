"""Every route's errors are RFC 9457 problem+json, found by walking the OpenAPI document.

New routes are covered without touching this file: the walk fails when a route answers a
request that must fail with anything but a problem document.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.support.api import SQLITE_ONLY, Api
from tests.support.problems import assert_client_problem

PASSWORD = "Tr0ub4dor&3-horse"
METHODS = ("get", "post", "put", "patch", "delete")
# Public reads that succeed without credentials: only their method can be wrong.
# Open to anyone, without a body: nothing a client sends can be wrong (the passkey options
# only count toward ip.login).
PUBLIC_READS = {("get", "/.well-known/jwks.json"), ("post", "/v1/auth/passkey/options")}


async def _operations(api: Api) -> list[tuple[str, str, dict[str, Any]]]:
    spec = (await api.client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    ops = [
        (method, path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]
    assert len(ops) >= 15, ops  # the walk really found the API
    return ops


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


async def test_every_route_answers_bad_requests_with_problem_json(api: Api) -> None:
    user = Api.bearer((await api.user())["access_token"])
    admin = await api.admin_headers()
    garbage = {"Authorization": "Bearer not.a.token"}
    failed: set[tuple[str, str]] = set()
    for method, path, op in await _operations(api):
        has_body = "requestBody" in op
        variants: list[tuple[str, dict[str, str], bytes | None]] = [
            ("no auth", {}, b"{" if has_body else None),
            ("garbage token", garbage, b"{" if has_body else None),
            ("user, garbage body", user, b"{" if has_body else None),
            ("admin, wrong types", admin, b'{"email": 1, "name": []}' if has_body else None),
        ]
        for label, headers, content in variants:
            url = _fill(path, "not-a-uuid")
            kwargs: dict[str, Any] = {"headers": {**headers}}
            if content is not None:
                kwargs["content"] = content
                kwargs["headers"]["Content-Type"] = "application/json"
            r = await api.client.request(method.upper(), url, **kwargs)
            assert r.status_code < 500, f"{method} {path} ({label}): {r.text}"
            if r.status_code >= 400:
                assert_client_problem(r, f"{method.upper()} {path} ({label})")
                failed.add((method, path))
    missing = {(m, p) for m, p, _ in await _operations(api)} - failed - PUBLIC_READS
    assert not missing, f"no failing request found for {sorted(missing)}"


async def test_unknown_ids_are_404_problems(api: Api) -> None:
    admin = await api.admin_headers()
    user = Api.bearer((await api.user())["access_token"])
    nobody = str(uuid.uuid4())
    for method, path, headers in (
        ("GET", f"/v1/admin/users/{nobody}", admin),
        ("PATCH", f"/v1/admin/users/{nobody}", admin),
        ("DELETE", f"/v1/admin/users/{nobody}", admin),
        ("DELETE", f"/v1/sessions/{nobody}", user),
    ):
        kwargs: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
        r = await api.client.request(method, path, headers=headers, **kwargs)
        assert r.status_code == 404, (method, path, r.text)
        assert_client_problem(r, f"{method} {path}")


@SQLITE_ONLY
async def test_unknown_paths_are_404_problems(api: Api) -> None:
    for path in ("/nope", "/v1", "/v1/nope", "/v2/auth/login", "/v1/auth/login/extra", "/%ff"):
        for method in ("GET", "POST"):
            r = await api.client.request(method, path)
            body = assert_client_problem(r, f"{method} {path}")
            assert r.status_code == 404
            assert body["type"].endswith("/not-found")
    r = await api.management.get("/nope")
    assert r.status_code == 404
    assert_client_problem(r, "management GET /nope")


@SQLITE_ONLY
async def test_wrong_methods_are_405_problems(api: Api) -> None:
    for _, path, _ in await _operations(api):
        allowed = {m for m, p, _ in await _operations(api) if p == path}
        for method in set(METHODS) - allowed:
            r = await api.client.request(method.upper(), _fill(path, str(uuid.uuid4())))
            body = assert_client_problem(r, f"{method.upper()} {path}")
            assert r.status_code == 405, (method, path, r.text)
            assert body["type"].endswith("/method-not-allowed")
            # Every method of the path, also when it is split over several routes (GET and
            # PATCH /v1/users/me); HEAD goes with GET.
            listed = {a.strip().lower() for a in r.headers["allow"].split(",")}
            expected = allowed | ({"head"} if "get" in allowed else set())
            assert listed == expected, (method, path, listed)
