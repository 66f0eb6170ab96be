"""Login, refresh and the session freshness check, statement by statement.

On PostgreSQL each of these runs as one statement (data-modifying CTEs, autocommit); on SQLite
as several statements in a transaction. Both paths must take the same decisions: these tests
pin the outcomes of every branch (winner, grace, reuse, revoked, expired, disabled user) and
what a login stores, on both databases.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from auth_service.accounts.models import User
from auth_service.audit.context import RequestContext
from auth_service.audit.models import AuditEvent
from auth_service.db.base import utcnow
from auth_service.sessions.models import RefreshToken, Session
from tests.support.api import Api

GRACE = {"tokens": {"refresh_reuse_grace_seconds": 30}}


async def _refresh(api: Api, token: str) -> Any:
    return await api.client.post("/v1/auth/refresh", json={"refresh_token": token})


def _slug(r: Any) -> str:
    return str(r.json()["type"]).rsplit("/", 1)[-1]


async def _tokens_of(api: Api, session_id: str) -> int:
    async with api.services.db.sessionmaker() as s:
        count = await s.scalar(
            select(func.count())
            .select_from(RefreshToken)
            .where(RefreshToken.session_id == uuid.UUID(session_id))
        )
    return int(count or 0)


async def _session(api: Api, session_id: str) -> Session:
    async with api.services.db.sessionmaker() as s:
        found = await s.get(Session, uuid.UUID(session_id))
    assert found is not None
    return found


async def _set_session(api: Api, session_id: str, **values: Any) -> None:
    async with api.services.db.transaction() as s:
        await s.execute(update(Session).where(Session.id == uuid.UUID(session_id)).values(**values))


async def _reuse_events(api: Api) -> int:
    return (await api.services.audit.query(event_type="refresh.reuse_detected"))[1]


async def test_login_stores_session_digest_last_login_and_audit_row(api: Api) -> None:
    user = await api.user()
    session_id = uuid.UUID(user["session_id"])
    async with api.services.db.sessionmaker() as s:
        session = await s.get(Session, session_id)
        tokens = (
            await s.scalars(select(RefreshToken).where(RefreshToken.session_id == session_id))
        ).all()
        account = await s.scalar(select(User).where(User.email == user["email"]))
        assert account is not None
        audit = (
            await s.scalars(
                select(AuditEvent).where(
                    AuditEvent.type == "login.succeeded", AuditEvent.subject_user_id == account.id
                )
            )
        ).all()
    assert session is not None
    assert session.user_id == account.id
    assert session.revoked_at is None
    assert session.ip == "203.0.113.7"
    assert session.expires_at - session.created_at == timedelta(days=30)
    # Only the SHA-256 of the refresh token is stored.
    assert [t.token_hash for t in tokens] == [
        hashlib.sha256(user["refresh_token"].encode()).digest()
    ]
    assert tokens[0].used_at is None
    assert account.last_login_at is not None
    assert account.updated_at == account.last_login_at
    assert len(audit) == 1
    assert audit[0].actor_user_id == account.id
    assert audit[0].details == {"session_id": str(session_id), "kind": "api"}


async def test_refresh_stores_only_the_digest_of_the_successor(api: Api) -> None:
    user = await api.user()
    r = await _refresh(api, user["refresh_token"])
    assert r.status_code == 200
    successor = r.json()["refresh_token"]
    async with api.services.db.sessionmaker() as s:
        tokens = {
            t.token_hash: t
            for t in await s.scalars(
                select(RefreshToken).where(RefreshToken.session_id == uuid.UUID(user["session_id"]))
            )
        }
    spent = tokens[hashlib.sha256(user["refresh_token"].encode()).digest()]
    fresh = tokens[hashlib.sha256(successor.encode()).digest()]
    assert spent.used_at is not None
    assert fresh.used_at is None
    session = await _session(api, user["session_id"])
    assert session.last_used_at == spent.used_at


async def test_concurrent_exchanges_have_exactly_one_winner_and_one_successor(api: Api) -> None:
    user = await api.user()
    results = await asyncio.gather(*(_refresh(api, user["refresh_token"]) for _ in range(10)))
    codes = [r.status_code for r in results]
    assert codes.count(200) == 1, codes
    # Without a grace window every loser is a reuse: the session is revoked.
    assert {_slug(r) for r in results if r.status_code != 200} == {"refresh-token-reused"}
    assert await _tokens_of(api, user["session_id"]) == 2  # the presented one + one successor
    assert (await _session(api, user["session_id"])).revoked_at is not None


@pytest.mark.parametrize("settings_overrides", [GRACE], indirect=True)
async def test_concurrent_exchanges_inside_the_grace_window_all_rotate(api: Api) -> None:
    user = await api.user()
    results = await asyncio.gather(*(_refresh(api, user["refresh_token"]) for _ in range(6)))
    assert [r.status_code for r in results] == [200] * 6
    assert len({r.json()["refresh_token"] for r in results}) == 6
    assert await _tokens_of(api, user["session_id"]) == 7
    assert (await _session(api, user["session_id"])).revoked_at is None
    assert await _reuse_events(api) == 0


@pytest.mark.parametrize("settings_overrides", [GRACE], indirect=True)
async def test_a_token_spent_before_the_grace_window_revokes_the_session(api: Api) -> None:
    user = await api.user()
    second = (await _refresh(api, user["refresh_token"])).json()
    async with api.services.db.transaction() as s:
        await s.execute(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == hashlib.sha256(user["refresh_token"].encode()).digest()
            )
            .values(used_at=utcnow() - timedelta(minutes=5))
        )
    r = await _refresh(api, user["refresh_token"])
    assert r.status_code == 401
    assert _slug(r) == "refresh-token-reused"
    assert (await _session(api, user["session_id"])).revoked_reason == "refresh_reuse"
    assert (await _refresh(api, second["refresh_token"])).status_code == 401
    assert await _reuse_events(api) == 1


async def test_a_revoked_session_refuses_its_unspent_token_without_spending_it(api: Api) -> None:
    user = await api.user()
    other = (await api.login(user["email"], user["password"])).json()
    r = await api.client.delete(
        f"/v1/sessions/{other['session_id']}", headers=api.bearer(user["access_token"])
    )
    assert r.status_code == 204
    for _ in range(2):  # still unspent the second time: not mistaken for a reuse
        r = await _refresh(api, other["refresh_token"])
        assert r.status_code == 401
        assert _slug(r) == "invalid-refresh-token"
    assert await _tokens_of(api, other["session_id"]) == 1
    assert await _reuse_events(api) == 0


@pytest.mark.parametrize("settings_overrides", [GRACE], indirect=True)
async def test_a_token_inside_the_grace_window_of_a_revoked_session_is_refused(api: Api) -> None:
    user = await api.user()
    assert (await _refresh(api, user["refresh_token"])).status_code == 200
    await _set_session(api, user["session_id"], revoked_at=utcnow(), revoked_reason="user")
    r = await _refresh(api, user["refresh_token"])
    assert r.status_code == 401
    assert _slug(r) == "invalid-refresh-token"
    assert await _reuse_events(api) == 0


async def test_a_session_past_its_absolute_lifetime_cannot_refresh(api: Api) -> None:
    user = await api.user()
    await _set_session(api, user["session_id"], expires_at=utcnow() - timedelta(seconds=1))
    r = await _refresh(api, user["refresh_token"])
    assert r.status_code == 401
    assert _slug(r) == "invalid-refresh-token"
    r = await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))
    assert r.status_code == 401


async def test_a_disabled_user_is_refused_at_once_even_with_live_sessions(api: Api) -> None:
    """Status alone decides: no session was revoked, yet me and refresh refuse."""
    user = await api.user()
    headers = api.bearer(user["access_token"])
    assert (await api.client.get("/v1/users/me", headers=headers)).status_code == 200
    async with api.services.db.transaction() as s:
        await s.execute(update(User).where(User.email == user["email"]).values(status="disabled"))
    assert (await api.client.get("/v1/users/me", headers=headers)).status_code == 401
    r = await _refresh(api, user["refresh_token"])
    assert r.status_code == 401
    assert _slug(r) == "invalid-refresh-token"
    assert (await _session(api, user["session_id"])).revoked_reason == "user_inactive"


async def test_me_reads_the_user_with_the_session_check(api: Api) -> None:
    user = await api.user()
    headers = api.bearer(user["access_token"])
    async with api.services.db.transaction() as s:
        await s.execute(update(User).where(User.email == user["email"]).values(name="Renamed"))
    r = await api.client.get("/v1/users/me", headers=headers)
    assert r.status_code == 200
    assert r.json()["name"] == "Renamed"
    assert r.json()["email"] == user["email"]


async def test_authenticate_alone_records_the_login(api: Api) -> None:
    """The operator paths (CLI, backup verification) authenticate without opening a session."""
    user = await api.user()
    async with api.services.db.sessionmaker() as s:
        before = await s.scalar(select(User.last_login_at).where(User.email == user["email"]))
    identity = await api.services.accounts.credentials.authenticate(
        user["email"], user["password"], RequestContext()
    )
    async with api.services.db.sessionmaker() as s:
        after = await s.scalar(select(User.last_login_at).where(User.email == user["email"]))
    assert before is not None
    assert after is not None
    assert after == identity.last_login_at
    assert after > before
