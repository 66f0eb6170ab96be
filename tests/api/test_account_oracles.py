"""No answer tells whether an address has an account: not the status, not the work (ADR 0011).

Forgot-password, registration and verification resend run the *same SQL statements*, word for
word, whatever the account's state, and write the same rows (a token row every time: a decoy,
never spendable, where there is no account). Counted per request on SQLite and PostgreSQL;
`bench/` times the forgot-password medians on PostgreSQL.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, func, select, update

from auth_service.accounts import onetime
from auth_service.accounts.errors import InvalidOneTimeToken
from auth_service.accounts.models import OneTimeToken, User
from auth_service.db.base import utcnow
from tests.support.api import Api

PASSWORD = "Tr0ub4dor&3-horse"
# Tables of the flows under test; background work (health checks, key reloads) is not counted.
_FLOW_TABLES = re.compile(r"\b(users|one_time_tokens|audit_events)\b")


@contextmanager
def statements(api: Api) -> Iterator[list[str]]:
    """The SQL text of every statement the flows run on the engine while the block runs."""
    seen: list[str] = []
    engine = api.services.db.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if _FLOW_TABLES.search(statement):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _count(api: Api, model: Any, *where: Any) -> int:
    async with api.services.db.sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _disable(api: Api, email: str) -> None:
    async with api.services.db.transaction() as s:
        await s.execute(update(User).where(User.email == email).values(status="disabled"))


def _hashes() -> float:
    name = "auth_password_hash_duration_seconds_count"
    return REGISTRY.get_sample_value(name, {"operation": "hash"}) or 0.0


async def _work(api: Api, request: Any) -> tuple[int, list[str], int]:
    """Status, statements and token rows written by one request."""
    tokens = await _token_hashes(api)
    with statements(api) as seen:
        r = await request()
    return r.status_code, seen, len(await _token_hashes(api) - tokens)


# ---- forgot password ----------------------------------------------------------------------------


async def test_forgot_password_runs_the_same_statements_for_known_unknown_and_disabled(
    api: Api,
) -> None:
    known = (await api.user())["email"]
    disabled = (await api.user())["email"]
    await _disable(api, disabled)
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"

    def forgot(email: str) -> Any:
        return lambda: api.client.post("/v1/auth/password/forgot", json={"email": email})

    for email in (known, unknown, disabled):  # warm: connections, prepared statements
        await forgot(email)()
    await api.mail()
    mails_before = len(await api.mail())
    work = {email: await _work(api, forgot(email)) for email in (known, unknown, disabled)}

    statuses = {status for status, _, _ in work.values()}
    assert statuses == {202}
    texts = [seen for _, seen, _ in work.values()]
    assert texts[0], "no statement was counted"
    assert texts[0] == texts[1] == texts[2]  # the same statements, word for word
    assert [written for _, _, written in work.values()] == [1, 1, 1]  # a token row each time
    mails = (await api.mail())[mails_before:]
    assert len(mails) == 1
    assert f"To: {known}" in mails[0]


async def test_a_decoy_token_is_never_spent_and_expired_decoys_are_dropped(api: Api) -> None:
    # A decoy whose token we know (the service never keeps one), plus an expired decoy.
    decoy = onetime.issue(
        user_id=None,
        tenant_id=api.services.accounts.tenant_id,
        purpose=onetime.Purpose.password_reset,
        ttl_seconds=600,
    )
    expired = onetime.issue(
        user_id=None,
        tenant_id=api.services.accounts.tenant_id,
        purpose=onetime.Purpose.password_reset,
        ttl_seconds=600,
    )
    await api.services.db.write_together(*decoy.writes)
    await api.services.db.write_together(*expired.writes)
    async with api.services.db.transaction() as s:
        await s.execute(
            update(OneTimeToken)
            .where(OneTimeToken.token_hash == _digest(expired.token))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    r = await api.client.post(
        "/v1/auth/password/reset", json={"token": decoy.token, "new_password": "brand new phrase"}
    )
    assert r.status_code == 400
    assert r.json()["type"].endswith("/invalid-one-time-token")
    with pytest.raises(InvalidOneTimeToken):
        await onetime.holder(api.services.db, decoy.token, onetime.Purpose.password_reset)
    with pytest.raises(InvalidOneTimeToken):
        async with api.services.db.transaction() as s:
            await onetime.consume(s, decoy.token, onetime.Purpose.password_reset)
    assert await _count(api, OneTimeToken, OneTimeToken.used_at.is_not(None)) == 0

    # The next decoy written drops the expired one and keeps the live one.
    await api.client.post("/v1/auth/password/forgot", json={"email": "ghost@example.com"})
    hashes = await _token_hashes(api)
    assert _digest(decoy.token) in hashes
    assert _digest(expired.token) not in hashes
    assert await _count(api, OneTimeToken, OneTimeToken.user_id.is_(None)) == 2


def _digest(token: str) -> bytes:
    from auth_service.security.random import token_digest

    return token_digest(token)


async def _token_hashes(api: Api) -> set[bytes]:
    async with api.services.db.sessionmaker() as s:
        return set(await s.scalars(select(OneTimeToken.token_hash)))


# ---- registration -------------------------------------------------------------------------------


async def test_register_runs_the_same_statements_and_hash_for_new_taken_and_disabled(
    api: Api,
) -> None:
    taken = (await api.user())["email"]
    disabled = (await api.user())["email"]
    await _disable(api, disabled)
    await api.register(f"warm-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    await api.register(taken, PASSWORD)
    mails_before = len(await api.mail())
    fresh = f"new-{uuid.uuid4().hex[:8]}@example.com"

    work, hashed = {}, {}
    for email in (fresh, taken, disabled):
        users = await _count(api, User)
        before = _hashes()
        work[email] = await _work(api, lambda email=email: api.register(email, PASSWORD))
        hashed[email] = _hashes() - before
        work[email] += (await _count(api, User) - users,)  # type: ignore[assignment]

    assert {w[0] for w in work.values()} == {202}
    texts = [w[1] for w in work.values()]
    assert texts[0]
    assert texts[0] == texts[1] == texts[2]
    assert [w[2] for w in work.values()] == [1, 1, 1]  # a token row each time
    assert list(hashed.values()) == [1, 1, 1]  # argon2 on every path: no faster answer
    assert [w[3] for w in work.values()] == [1, 0, 0]  # only the new address has a new user
    mails = (await api.mail())[mails_before:]
    assert len(mails) == 2  # the new address and the active owner; a disabled one gets none
    assert f"To: {fresh}" in mails[0]
    assert "/verify-email?token=" in mails[0]
    assert f"To: {taken}" in mails[1]
    assert "Someone tried to create an account with your address" in mails[1]


async def test_the_owner_reclaims_a_squatted_address_with_the_notice(api: Api) -> None:
    """Someone registered the address first (unverified, their password). The owner's own
    registration mails them a reset link; using it hands them the account."""
    email = "owner@example.com"
    squatter = await api.user(email, "squatters pass phrase")
    assert (await api.register(email, PASSWORD)).status_code == 202
    token = await api.mailed_token("Someone tried")
    r = await api.client.post(
        "/v1/auth/password/reset", json={"token": token, "new_password": PASSWORD}
    )
    assert r.status_code == 204, r.text
    assert (await api.login(email, "squatters pass phrase")).status_code == 401
    owner = (await api.login(email, PASSWORD)).json()
    me = await api.client.get("/v1/users/me", headers=api.bearer(owner["access_token"]))
    assert me.json()["email_verified"] is True  # the reset link proved the mailbox
    gone = await api.client.get("/v1/users/me", headers=api.bearer(squatter["access_token"]))
    assert gone.status_code == 401


# ---- verification resend ------------------------------------------------------------------------


async def test_resend_runs_the_same_statements_verified_or_not(api: Api) -> None:
    pending = await api.user()
    verified = await api.user()
    async with api.services.db.transaction() as s:
        await s.execute(
            update(User).where(User.email == verified["email"]).values(email_verified_at=utcnow())
        )

    def resend(user: dict[str, Any]) -> Any:
        headers = api.bearer(user["access_token"])
        return lambda: api.client.post("/v1/auth/email/resend", headers=headers)

    for user in (pending, verified):
        await resend(user)()
    mails_before = len(await api.mail())
    work = [await _work(api, resend(user)) for user in (pending, verified)]
    assert [w[0] for w in work] == [202, 202]
    assert work[0][1]
    assert work[0][1] == work[1][1]
    assert [w[2] for w in work] == [1, 1]
    mails = (await api.mail())[mails_before:]
    assert len(mails) == 1
    assert f"To: {pending['email']}" in mails[0]
