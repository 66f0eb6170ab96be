"""Recovery codes over the JSON API and the service, on both databases: shown once, hashed,
single use (and exactly one winner of concurrent uses), regenerating invalidates the old set,
the count left is visible; adding and removing factors mails the user."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from auth_service.mfa.models import RecoveryCode
from tests.support.api import Api
from tests.support.mfa import MFA_SETTINGS, enrol_totp, finish, mfa_flow

pytestmark = pytest.mark.parametrize("settings_overrides", [MFA_SETTINGS], indirect=True)


async def _codes(api: Api, token: str) -> list[str]:
    r = await api.client.post("/v1/mfa/recovery-codes", headers=api.bearer(token))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    codes: list[str] = r.json()["codes"]
    return codes


async def test_ten_codes_stored_hashed_each_used_once(api: Api) -> None:
    user = await api.user()
    await enrol_totp(api, user["access_token"])
    codes = await _codes(api, user["access_token"])
    assert len(codes) == 10
    assert len(set(codes)) == 10
    async with api.services.db.single() as conn:
        stored = (await conn.execute(select(RecoveryCode.code_hash))).scalars().all()
    assert len(stored) == 10
    assert not any(c.replace("-", "").encode() in h for c in codes for h in stored)

    flow = await mfa_flow(api, user)
    assert flow["methods"] == ["totp", "recovery_code"]
    # Typed loosely: upper case, spaces instead of hyphens.
    typed = codes[0].upper().replace("-", " ")
    r = await finish(api, flow["flow_id"], recovery_code=typed)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    r = await api.client.get("/v1/mfa", headers=api.bearer(token))
    assert r.json()["recovery_codes_left"] == 9

    again = await mfa_flow(api, user)
    r = await finish(api, again["flow_id"], recovery_code=codes[0])
    assert r.status_code == 401
    assert r.json()["type"].endswith("/invalid-factor")


async def test_regenerating_invalidates_the_old_set(api: Api) -> None:
    user = await api.user()
    await enrol_totp(api, user["access_token"])
    old = await _codes(api, user["access_token"])
    new = await _codes(api, user["access_token"])  # a fresh session: recent enough
    assert not set(old) & set(new)
    flow = await mfa_flow(api, user)
    assert (await finish(api, flow["flow_id"], recovery_code=old[1])).status_code == 401
    assert (await finish(api, flow["flow_id"], recovery_code=new[1])).status_code == 200


async def test_concurrent_use_of_one_code_has_exactly_one_winner(api: Api) -> None:
    user = await api.user()
    await enrol_totp(api, user["access_token"])
    codes = await _codes(api, user["access_token"])
    me = await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))
    uid = uuid.UUID(me.json()["id"])
    factors = api.services.mfa.factors
    for code in codes[:3]:
        results = await asyncio.gather(*(factors.use_recovery_code(uid, code) for _ in range(8)))
        assert results.count(True) == 1, results
    # And through the API: two flows racing with the same code.
    flows = [await mfa_flow(api, user) for _ in range(2)]
    answers = await asyncio.gather(
        *(finish(api, f["flow_id"], recovery_code=codes[5]) for f in flows)
    )
    assert sorted(r.status_code for r in answers) == [200, 401]


async def test_users_are_mailed_when_factors_change(api: Api) -> None:
    user = await api.user()
    await enrol_totp(api, user["access_token"])
    r = await api.client.delete("/v1/mfa/totp", headers=api.bearer(user["access_token"]))
    assert r.status_code == 204
    mails = [m for m in await api.mail() if user["email"] in m]
    assert any("A sign-in method was added to your account" in m for m in mails)
    assert any("A sign-in method was removed from your account" in m for m in mails)
    # The factor is gone: the password alone signs in again.
    assert (await api.login(user["email"], user["password"])).status_code == 200
