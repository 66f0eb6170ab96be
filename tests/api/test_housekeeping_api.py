"""Housekeeping beside the real API: with no retention at all, a run removes the sessions
that ended, and what must still be refused is refused: a spent refresh token of a live
session is still recognised as reuse (and revokes it), a logged-out session's token stays
dead once its rows are gone."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from auth_service.sessions.models import RefreshToken, Session
from tests.support.api import Api
from tests.support.problems import assert_problem

pytestmark = pytest.mark.parametrize(
    "settings_overrides",
    [{"housekeeping": {"session_retention_days": 0, "token_retention_hours": 0}}],
    indirect=True,
)


async def _rows(api: Api, model: type[Session] | type[RefreshToken]) -> int:
    async with api.services.db.single() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


async def test_reuse_is_still_detected_after_a_run(api: Api) -> None:
    live = await api.user()
    spent = live["refresh_token"]
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": spent})
    assert r.status_code == 200, r.text
    newest = r.json()["refresh_token"]

    ended = await api.login(live["email"], live["password"])
    gone = ended.json()
    r = await api.client.post(
        "/v1/auth/logout",
        json={"refresh_token": gone["refresh_token"]},
        headers=api.bearer(gone["access_token"]),
    )
    assert r.status_code in (200, 204), r.text
    assert await _rows(api, Session) == 2

    report = await api.services.housekeeping.run()
    rows = {t.table: t.rows for t in report.tables}
    assert (rows["sessions"], rows["refresh_tokens"]) == (1, 1)
    assert await _rows(api, Session) == 1
    assert await _rows(api, RefreshToken) == 2  # the live session's whole chain

    assert_problem(
        await api.client.post("/v1/auth/refresh", json={"refresh_token": gone["refresh_token"]}),
        401,
        "invalid-refresh-token",
    )
    assert_problem(
        await api.client.post("/v1/auth/refresh", json={"refresh_token": spent}),
        401,
        "refresh-token-reused",
    )
    assert_problem(
        await api.client.post("/v1/auth/refresh", json={"refresh_token": newest}),
        401,
        "invalid-refresh-token",
    )
