"""Look-alike emails are one account; mixed-script local parts are refused (ADR 0012)."""

from __future__ import annotations

from sqlalchemy import func, select

from auth_service.accounts.models import User
from tests.support.api import Api

PASSWORD = "Tr0ub4dor&3-horse"


async def _accounts(api: Api) -> list[str]:
    async with api.services.db.sessionmaker() as s:
        return list(await s.scalars(select(User.email).order_by(User.email)))


async def test_a_full_width_address_is_the_same_account(api: Api) -> None:
    user = await api.user("ada@example.com", PASSWORD)
    r = await api.login("\uff41da@example.com", PASSWORD)
    assert r.status_code == 200
    assert r.json()["session_id"] != user["session_id"]
    me = await api.client.get("/v1/users/me", headers=api.bearer(r.json()["access_token"]))
    assert me.json()["email"] == "ada@example.com"
    await api.register("\uff41\uff44\uff41@example.com", "another pass phrase")
    assert await _accounts(api) == ["ada@example.com"]


async def test_a_mixed_script_local_part_is_refused_with_a_reason(api: Api) -> None:
    r = await api.register("\u0430d\u0430@example.com", PASSWORD)  # Cyrillic a, Latin d
    assert r.status_code == 422
    body = r.json()
    assert body["type"].endswith("/invalid-email")
    assert body["errors"][0]["field"] == "email"
    assert "mix alphabets" in body["errors"][0]["reasons"][0]
    async with api.services.db.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(User)) == 0
