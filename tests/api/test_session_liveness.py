"""One rule decides whether a session is usable; the list, the gauge and the bearer check
agree on it (revoked, absolutely expired and idle sessions are all out)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import update

from auth_service.db.base import utcnow
from auth_service.sessions.models import Session
from tests.support.api import Api


async def test_list_gauge_and_bearer_check_agree_on_usable_sessions(api: Api) -> None:
    user = await api.user()
    logins = [user] + [(await api.login(user["email"], user["password"])).json() for _ in range(3)]
    revoked, idle, expired = (logins[1], logins[2], logins[3])
    r = await api.client.delete(
        f"/v1/sessions/{revoked['session_id']}", headers=api.bearer(user["access_token"])
    )
    assert r.status_code == 204
    idle_ttl = api.services.settings.tokens.refresh_idle_ttl_seconds
    async with api.services.db.transaction() as s:
        await s.execute(
            update(Session)
            .where(Session.id == uuid.UUID(idle["session_id"]))
            .values(last_used_at=utcnow() - timedelta(seconds=idle_ttl + 5))
        )
        await s.execute(
            update(Session)
            .where(Session.id == uuid.UUID(expired["session_id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    listed = (await api.client.get("/v1/sessions", headers=api.bearer(user["access_token"]))).json()
    assert [s["id"] for s in listed] == [user["session_id"]]
    assert await api.services.sessions.count_active() == len(listed) == 1
    for ended in (revoked, idle, expired):
        r = await api.client.get("/v1/users/me", headers=api.bearer(ended["access_token"]))
        assert r.status_code == 401, ended
