"""JWKS and discovery answered in front of FastAPI (web/static.py, ADR 0420): the same
status, headers and bytes as the routed path through every middleware, and still counted."""

from __future__ import annotations

import json

import pytest
from starlette.responses import JSONResponse

from tests.support.api import Api

JWKS = "/.well-known/jwks.json"
OPENID = "/.well-known/openid-configuration"
AS_METADATA = "/.well-known/oauth-authorization-server"
# A request with a Content-Length is handed to the full stack (the body limit decides), so
# this is the previous behaviour: middleware, router, route.
ROUTED = {"Content-Length": "0"}


def _comparable(headers: object) -> list[tuple[str, str]]:
    pairs = [(k.lower(), v) for k, v in headers.multi_items()]  # type: ignore[attr-defined]
    return sorted((k, v) for k, v in pairs if k != "x-request-id")


@pytest.mark.parametrize("path", [JWKS, OPENID, AS_METADATA])
async def test_fast_path_answers_as_the_full_stack_does(api: Api, path: str) -> None:
    fast = await api.client.get(path)
    routed = await api.client.get(path, headers=ROUTED)
    assert fast.status_code == routed.status_code == 200
    assert fast.content == routed.content
    assert _comparable(fast.headers) == _comparable(routed.headers)
    names = {k for k, _ in _comparable(fast.headers)}
    assert {
        "cache-control",
        "etag",
        "content-type",
        "content-length",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "content-security-policy",
        "cross-origin-opener-policy",
        "cross-origin-resource-policy",
        "permissions-policy",
    } <= names
    assert fast.headers["x-request-id"]
    assert routed.headers["x-request-id"]
    assert fast.headers["x-request-id"] != routed.headers["x-request-id"]

    for headers in ({}, ROUTED):
        etag = fast.headers["etag"]
        cached = await api.client.get(path, headers={**headers, "If-None-Match": etag})
        assert cached.status_code == 304
        assert cached.content == b""
        head = await api.client.head(path, headers=headers)
        assert head.status_code == 200
        assert head.content == b""
        assert _comparable(head.headers) == _comparable(fast.headers)


@pytest.mark.parametrize("path", [OPENID, AS_METADATA])
async def test_discovery_bytes_are_those_of_the_previous_json_response(api: Api, path: str) -> None:
    r = await api.client.get(path)
    previous = JSONResponse(
        api.services.oauth.discovery(), headers={"Cache-Control": "public, max-age=300"}
    )
    assert r.content == previous.body
    assert r.headers["content-type"] == previous.headers["content-type"]
    assert r.headers["cache-control"] == previous.headers["cache-control"]


async def test_request_id_is_honoured_or_replaced(api: Api) -> None:
    mine = await api.client.get(OPENID, headers={"X-Request-ID": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    forged = await api.client.get(OPENID, headers={"X-Request-ID": "a b\tc"})
    assert forged.headers["x-request-id"] not in ("a b\tc", "")


async def test_settings_reload_rebuilds_discovery(api: Api) -> None:
    before = await api.client.get(OPENID)
    settings = api.services.settings
    reloaded = settings.model_copy(
        update={"oauth": settings.oauth.model_copy(update={"scopes": {"orders:read": "orders"}})}
    )
    api.services.oauth.apply_settings(reloaded)
    after = await api.client.get(OPENID, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert "orders:read" in json.loads(after.content)["scopes_supported"]
    assert "orders:read" not in json.loads(before.content)["scopes_supported"]


async def test_fast_path_is_counted_and_other_methods_are_routed(api: Api) -> None:
    before = await api.requests_counted(AS_METADATA)
    for _ in range(3):
        assert (await api.client.get(AS_METADATA)).status_code == 200
    assert await api.requests_counted(AS_METADATA) == before + 3
    r = await api.client.post(AS_METADATA, json={})
    assert r.status_code == 405


async def test_cross_origin_requests_take_the_cors_policy(api: Api) -> None:
    r = await api.client.get(JWKS, headers={"Origin": "https://elsewhere.example"})
    assert r.status_code == 200
    assert r.content == (await api.client.get(JWKS)).content
