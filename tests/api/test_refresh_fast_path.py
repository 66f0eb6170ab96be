"""The refresh exchange's cheap path (issue #19): the exchange statement runs on asyncpg's
connection directly (``Database.fetch_driver``) and the answer is serialised without the
pydantic model. Neither may change what a client sees: the same JSON, headers and claims,
one winner of concurrent exchanges with the family revoked, and 503 (never 500) when the
database connections are cut, without the pool reusing a dead connection.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import asyncpg
import pytest

from auth_service.sessions.schemas import TokenResponse
from tests.support.api import Api
from tests.support.problems import assert_problem
from tests.support.services import asyncpg_dsn

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


async def _refresh(api: Api, token: str) -> Any:
    return await api.client.post("/v1/auth/refresh", json={"refresh_token": token})


async def test_the_answer_is_the_token_response_as_before(api: Api) -> None:
    user = await api.user()
    r = await _refresh(api, user["refresh_token"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["pragma"] == "no-cache"
    # Byte for byte what JSONResponse(TokenResponse.model_dump(mode="json")) renders.
    model = TokenResponse.model_validate(r.json())
    expected = json.dumps(
        model.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")
    ).encode()
    assert r.content == expected
    assert list(r.json()) == list(TokenResponse.model_fields)
    assert r.json()["token_type"] == "Bearer"
    assert r.json()["session_id"] == user["session_id"]


async def test_the_rotated_access_token_says_what_the_first_one_said(api: Api) -> None:
    user = await api.user()
    first = _claims(user["access_token"])
    r = await _refresh(api, user["refresh_token"])
    assert r.status_code == 200, r.text
    again = _claims(r.json()["access_token"])
    for claim in ("sub", "sid", "tid", "roles", "amr", "acr", "auth_time", "iss", "aud"):
        assert again[claim] == first[claim], claim
    assert again["jti"] != first["jti"]
    me = await api.client.get("/v1/users/me", headers=api.bearer(r.json()["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == user["email"]


@POSTGRES_ONLY
async def test_parallel_uses_of_one_token_have_one_winner_and_revoke_the_family(api: Api) -> None:
    user = await api.user()
    results = await asyncio.gather(*(_refresh(api, user["refresh_token"]) for _ in range(16)))
    winners = [r for r in results if r.status_code == 200]
    assert len(winners) == 1, [r.status_code for r in results]
    for loser in results:
        if loser.status_code != 200:
            assert_problem(loser, 401, "refresh-token-reused")
    # The family is revoked: the winner's successor is refused as well.
    successor = await _refresh(api, winners[0].json()["refresh_token"])
    assert successor.status_code == 401
    reuse = await api.services.audit.query(event_type="refresh.reuse_detected")
    assert reuse[1] >= 1


@POSTGRES_ONLY
async def test_cut_connections_answer_503_and_are_not_reused(api: Api) -> None:
    user = await api.user()
    token = user["refresh_token"]
    warm = await _refresh(api, token)  # the pool now holds connections used by the exchange
    assert warm.status_code == 200
    token = warm.json()["refresh_token"]
    url = api.services.db.engine.url.render_as_string(hide_password=False)
    # The app's background work (health checks, the job worker) shares the pool: when it meets
    # a cut connection first, the pool is replaced before the exchange runs. Cut again until an
    # exchange is the one that meets it.
    for _ in range(5):
        admin = await asyncpg.connect(asyncpg_dsn(url))
        try:
            cut = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert cut >= 1
        answers = []
        for _ in range(30):
            r = await _refresh(api, token)
            answers.append(r.status_code)
            if r.status_code == 200:
                break
            # The statement never ran: the token is not spent and may be presented again.
            assert_problem(r, 503, "database-unavailable")
            assert r.headers["retry-after"] == "5"
        assert answers[-1] == 200, answers
        token = r.json()["refresh_token"]
        if answers[0] == 503:  # the exchange met a cut connection first
            break
    else:
        pytest.fail("in five tries no exchange met a cut connection first")
    # Every dead connection was dropped when it failed: none is handed out again.
    for _ in range(5):
        r = await _refresh(api, token)
        assert r.status_code == 200, r.text
        token = r.json()["refresh_token"]


def test_the_driver_statement_reads_the_rows_by_the_select_keys() -> None:
    from auth_service.sessions.refresh import _EXCHANGE_DRIVER, _EXCHANGE_POSTGRESQL

    assert _EXCHANGE_DRIVER.keys == tuple(_EXCHANGE_POSTGRESQL.selected_columns.keys())
    assert _EXCHANGE_DRIVER.names == (
        "now",
        "digest",
        "owner_client_id",
        "grace",
        "grace_cutoff",
        "idle_cutoff",
        "successor_id",
        "successor_digest",
    )
