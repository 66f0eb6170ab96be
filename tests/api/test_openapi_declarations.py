"""What the schemathesis run (tests/integration/fuzz/) found, pinned as plain tests: the OpenAPI
document declares every answer a route can give, and the inputs it documents are the only
ones accepted."""

from __future__ import annotations

from typing import Any

from tests.support.api import SQLITE_ONLY, Api

PROBLEM = "application/problem+json"


async def _operations(api: Api) -> list[tuple[str, str, dict[str, Any]]]:
    spec = (await api.client.get("/openapi.json")).json()
    return [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()]


@SQLITE_ONLY
async def test_every_error_response_is_documented_as_problem_json(api: Api) -> None:
    for method, path, op in await _operations(api):
        statuses = set(op["responses"])
        assert "413" in statuses, (method, path)  # Content-Length over the limit, any route
        if method in ("post", "put", "patch"):
            assert {"400", "415"} <= statuses, (method, path)  # not JSON, or not parsable
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in statuses, (method, path)
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert list(response["content"]) == [PROBLEM], (method, path, status)
    spec = (await api.client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]


@SQLITE_ONLY
async def test_bodiless_answers_are_documented_without_content(api: Api) -> None:
    for method, path, op in await _operations(api):
        for status in ("202", "204"):
            if status in op["responses"]:
                assert "content" not in op["responses"][status], (method, path, status)


async def test_audit_filters_take_rfc3339_only(api: Api) -> None:
    # pydantic read "0.5" as seconds since the epoch: a 200 for input the schema refuses.
    admin = await api.admin_headers()
    for value in ("0.5", "1700000000", "-1", "2026"):
        r = await api.client.get("/v1/admin/audit-events", params={"until": value}, headers=admin)
        assert r.status_code == 422, (value, r.text)
        assert r.json()["errors"][0]["field"] == "query.until"
    for value in ("2026-01-31T12:00:00Z", "2026-01-31T12:00:00+02:00", "2026-01-31 12:00:00Z"):
        r = await api.client.get("/v1/admin/audit-events", params={"since": value}, headers=admin)
        assert r.status_code == 200, (value, r.text)
    r = await api.client.get(
        "/v1/admin/audit-events", params={"since": "2026-01-31T12:00:00"}, headers=admin
    )
    assert r.status_code == 422, r.text  # naive: which zone was meant is unknown
