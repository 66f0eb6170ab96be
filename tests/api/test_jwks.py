"""JWKS: served from pre-serialised bytes with a strong ETag, ahead of the router."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from sqlalchemy import event
from starlette.requests import Request

from auth_service.audit.context import RequestContext
from auth_service.keys.routes import JWKS_PATH, not_modified
from auth_service.keys.routes import jwks as routed_jwks
from tests.support.api import Api


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"abcd"', False),
        ("abc", False),
    ],
)
def test_if_none_match_comparison(header: str | None, matches: bool) -> None:
    assert not_modified(header, '"abc"') is matches


async def test_etag_revalidation_and_rotation(api: Api) -> None:
    first = await api.client.get(JWKS_PATH)
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/jwk-set+json"
    assert int(first.headers["content-length"]) == len(first.content)
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)

    again = await api.client.get(JWKS_PATH, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert "max-age" in again.headers["cache-control"]
    # A 304 is still a response of the service: request id and security headers.
    assert again.headers["x-request-id"]
    assert again.headers["x-content-type-options"] == "nosniff"
    assert (
        await api.client.get(JWKS_PATH, headers={"If-None-Match": "W/" + etag})
    ).status_code == 304
    assert (
        await api.client.get(JWKS_PATH, headers={"If-None-Match": '"other"'})
    ).status_code == 200

    await api.services.keys.rotate(RequestContext())
    after = await api.client.get(JWKS_PATH, headers={"If-None-Match": etag})
    assert after.status_code == 200  # the old ETag no longer matches
    assert after.headers["etag"] != etag
    kids = {k["kid"] for k in after.json()["keys"]}
    assert kids != {k["kid"] for k in first.json()["keys"]}


async def test_fast_path_serves_what_the_route_serves(api: Api) -> None:
    fast = await api.client.get(JWKS_PATH)
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": JWKS_PATH, "headers": []}
    routed = await routed_jwks(api.services, Request(scope))
    assert routed.status_code == 200
    assert routed.body == fast.content
    assert routed.headers["etag"] == fast.headers["etag"]
    assert routed.headers["content-type"] == fast.headers["content-type"]
    assert routed.headers["cache-control"] == fast.headers["cache-control"]


async def test_fast_path_requests_are_measured_under_the_route_template(api: Api) -> None:
    await api.client.get(JWKS_PATH)
    scrape = (await api.management.get("/metrics")).text
    assert 'route="/.well-known/jwks.json"' in scrape
    # Other methods still go through the router (405 problem, not the document).
    r = await api.client.post(JWKS_PATH, json={})
    assert r.status_code == 405
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_concurrent_requests_at_the_cache_period_share_one_read_of_the_keys(
    api: Api,
) -> None:
    # At 64 connections every request in flight when the key cache's period ended queued
    # for a read of its own, one after another: the periodic re-read is now shared (and the
    # requests behind it go on with the keys as loaded), and so is the unknown-kid re-read.
    keys = api.services.keys
    kid = next(iter((await keys.jwks())["keys"]))["kid"]
    reads: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The reload's statement: every key, no condition.
        if statement.startswith("SELECT") and statement.rstrip().endswith("FROM signing_keys"):
            reads.append(statement)

    engine = api.services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        keys._loaded_at -= 3600  # the cache period is over
        found = await asyncio.gather(*(keys.public_key(kid) for _ in range(32)))
        assert all(k is not None and k.kid == kid for k in found)
        assert len(reads) == 1

        reads.clear()
        keys._loaded_at -= 2  # an unknown kid may re-read once a second
        missing = await asyncio.gather(*(keys.public_key("no-such-kid") for _ in range(16)))
        assert missing == [None] * 16
        assert len(reads) == 1

        # After a write of this process the read is its own, never a shared earlier one.
        reads.clear()
        new_kid = await keys.rotate(RequestContext())
        assert await keys.public_key(new_kid) is not None
        assert len(reads) == 1
    finally:
        event.remove(engine, "before_cursor_execute", record)
