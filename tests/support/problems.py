"""Assertions on RFC 9457 problem responses."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM = "application/problem+json"


def assert_problem(r: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """``r`` is the problem ``slug`` (the end of its type URI) with ``status``; its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body: dict[str, Any] = r.json()
    assert body["type"].endswith("/" + slug), body
    assert body["status"] == status
    assert body["title"]
    return body


def assert_client_problem(r: httpx.Response, where: str) -> dict[str, Any]:
    """``r`` is a well-formed 4xx problem, whichever one; ``where`` names the request."""
    assert 400 <= r.status_code < 500, f"{where}: {r.status_code} {r.text}"
    assert r.headers["content-type"].startswith(PROBLEM), f"{where}: {r.headers}"
    body: dict[str, Any] = r.json()
    assert isinstance(body.get("type"), str), (where, body)
    assert body["type"].startswith(("https://", "about:blank")), (where, body)
    assert isinstance(body.get("title"), str), (where, body)
    assert body["title"], (where, body)
    assert body.get("status") == r.status_code, (where, body)
    assert r.headers.get("cache-control") == "no-store", where
    return body
