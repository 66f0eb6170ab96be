"""HTTP semantics at the edge of the app: HEAD, no slash redirects, CORS refusals.

The raw-socket side (what uvicorn's parser refuses) is tests/integration/web/test_http_edge.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import SQLITE_ONLY, Api
from tests.support.problems import PROBLEM, assert_problem

ORIGIN = "https://app.example"


async def _head_matches_get(api: Api, path: str, **kw: Any) -> httpx.Response:
    get = await api.client.get(path, **kw)
    head = await api.client.head(path, **kw)
    assert head.status_code == get.status_code, (path, head.status_code, get.text)
    assert head.content == b"", path
    for name in ("content-type", "content-length", "cache-control", "etag"):
        assert head.headers.get(name) == get.headers.get(name), (path, name)
    return head


async def test_head_answers_as_get_without_a_body(api: Api) -> None:
    # On both databases: /v1/users/me reads the session and the user.
    user = await api.user()
    me = Api.bearer(user["access_token"])
    head = await _head_matches_get(api, "/v1/users/me", headers=me)
    assert head.status_code == 200
    head = await _head_matches_get(api, "/v1/sessions", headers=me)
    assert head.status_code == 200
    # A refused HEAD carries the GET's problem headers, without its body.
    head = await _head_matches_get(api, "/v1/users/me")
    assert head.status_code == 401
    assert head.headers["content-type"] == PROBLEM
    assert head.headers["www-authenticate"].startswith("Bearer")


@SQLITE_ONLY
async def test_head_on_jwks_takes_the_fast_path_and_honours_etags(api: Api) -> None:
    head = await _head_matches_get(api, "/.well-known/jwks.json")
    assert head.status_code == 200
    assert head.headers["content-type"] == "application/jwk-set+json"
    etag = head.headers["etag"]
    r = await api.client.head("/.well-known/jwks.json", headers={"If-None-Match": etag})
    assert r.status_code == 304
    assert r.content == b""
    await _head_matches_get(api, "/openapi.json")
    await _head_matches_get(api, "/docs")


@SQLITE_ONLY
async def test_head_where_get_is_not_allowed_is_405(api: Api) -> None:
    r = await api.client.head("/v1/auth/login")
    assert r.status_code == 405
    assert r.content == b""
    assert r.headers["content-type"] == PROBLEM


@SQLITE_ONLY
async def test_a_trailing_slash_is_404_and_never_a_redirect(api: Api) -> None:
    for method, path in (
        ("GET", "/v1/users/me/"),
        ("POST", "/v1/auth/login/"),
        ("GET", "/.well-known/jwks.json/"),
        ("GET", "/openapi.json/"),
    ):
        r = await api.client.request(method, path, headers={"Host": "evil.example"})
        assert_problem(r, 404, "not-found")
        assert "location" not in r.headers, (method, path)
    r = await api.management.get("/health/live/", headers={"Host": "evil.example"})
    assert_problem(r, 404, "not-found")


CORS = {"server": {"cors_origins": [ORIGIN], "cors_allow_credentials": True}}


@SQLITE_ONLY
@pytest.mark.parametrize("settings_overrides", [CORS], indirect=True)
async def test_refused_preflight_is_a_problem_granting_nothing(api: Api) -> None:
    for headers, refused in (
        ({"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, "origin"),
        ({"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"}, "method"),
        (
            {
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "X-Evil",
            },
            "headers",
        ),
    ):
        r = await api.client.options("/v1/auth/login", headers=headers)
        body = assert_problem(r, 403, "cors-not-allowed")
        assert body["detail"] == f"not allowed: {refused}"
        granted = [h for h in r.headers if h.lower().startswith("access-control-")]
        assert granted == [], r.headers
        assert r.headers["vary"] == "Origin"
        assert r.headers["x-content-type-options"] == "nosniff"
    # The allowed preflight still grants what is configured.
    r = await api.client.options(
        "/v1/auth/login",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.headers["access-control-allow-credentials"] == "true"


@SQLITE_ONLY
async def test_only_the_json_api_refuses_non_json_bodies(api: Api) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = await api.client.post("/v1/auth/login", content=b"email=a", headers=form)
    assert_problem(r, 415, "unsupported-media-type")
    # Outside /v1/ (where the hosted pages and OAuth2 endpoints take form posts) the route
    # decides: here there is none for POST, so the answer is the route's 405/404.
    r = await api.client.post("/.well-known/jwks.json", content=b"a=b", headers=form)
    assert_problem(r, 405, "method-not-allowed")
    r = await api.client.post("/no-such-endpoint", content=b"grant_type=x", headers=form)
    assert_problem(r, 404, "not-found")
    # The token endpoint takes the form and answers in OAuth2's own error format.
    r = await api.client.post("/oauth2/token", content=b"grant_type=x", headers=form)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
