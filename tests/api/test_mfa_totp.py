"""TOTP as a second factor over the JSON API, on both databases: enrolment, the mfa-required
answer, codes once only, clock skew, attempts, the flow used once, amr/acr in tokens."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from sqlalchemy import event, text

from tests.support.api import Api
from tests.support.mfa import MFA_SETTINGS, code_at, enrol_totp, finish, mfa_flow

pytestmark = pytest.mark.parametrize("settings_overrides", [MFA_SETTINGS], indirect=True)


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


async def test_password_only_sign_in_is_aal1(api: Api) -> None:
    user = await api.user()
    found = claims(user["access_token"])
    assert found["amr"] == ["pwd"]
    assert found["acr"] == "aal1"
    assert isinstance(found["auth_time"], int)


async def test_enrol_then_sign_in_with_a_code(api: Api) -> None:
    user = await api.user()
    r = await api.client.post("/v1/mfa/totp", headers=api.bearer(user["access_token"]))
    assert r.status_code == 200
    body = r.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert body["secret"] in body["otpauth_uri"]
    assert body["qr_svg"].startswith("<svg")
    assert "<script" not in body["qr_svg"]
    assert r.headers["cache-control"] == "no-store"
    # Not confirmed yet: sign-in still takes the password alone.
    assert (await api.login(user["email"], user["password"])).status_code == 200
    r = await api.client.post(
        "/v1/mfa/totp/confirm",
        json={"code": "000000" if code_at(body["secret"]) != "000000" else "111111"},
        headers=api.bearer(user["access_token"]),
    )
    assert r.status_code == 401
    assert r.json()["type"].endswith("/invalid-factor")
    r = await api.client.post(
        "/v1/mfa/totp/confirm",
        json={"code": code_at(body["secret"], -1)},
        headers=api.bearer(user["access_token"]),
    )
    assert r.status_code == 204

    flow = await mfa_flow(api, user)
    assert flow["status"] == 401
    assert flow["methods"] == ["totp"]
    assert 0 < flow["expires_in"] <= 300
    assert "access_token" not in flow
    r = await finish(api, flow["flow_id"], totp_code=code_at(body["secret"]))
    assert r.status_code == 200, r.text
    found = claims(r.json()["access_token"])
    assert found["amr"] == ["pwd", "otp", "mfa"]
    assert found["acr"] == "aal2"
    me = await api.client.get("/v1/users/me", headers=api.bearer(r.json()["access_token"]))
    assert me.status_code == 200
    # The refreshed token keeps how the session authenticated.
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": r.json()["refresh_token"]})
    assert claims(r.json()["access_token"])["acr"] == "aal2"


async def test_a_code_works_once_and_a_flow_once(api: Api) -> None:
    user = await api.user()
    secret = await enrol_totp(api, user["access_token"])
    first = await mfa_flow(api, user)
    code = code_at(secret)
    assert (await finish(api, first["flow_id"], totp_code=code)).status_code == 200
    # The flow is spent: even a fresh, right code cannot use it again.
    again = await finish(api, first["flow_id"], totp_code=code_at(secret, 1))
    assert again.status_code == 410
    assert again.json()["type"].endswith("/flow-expired")
    # The same code in a new flow: replay refused (RFC 6238 section 5.2).
    second = await mfa_flow(api, user)
    replay = await finish(api, second["flow_id"], totp_code=code)
    assert replay.status_code == 401
    assert replay.json()["type"].endswith("/invalid-factor")
    # An older step than the last accepted one is refused too, a newer one is not.
    assert (await finish(api, second["flow_id"], totp_code=code_at(secret, -1))).status_code == 401
    assert (await finish(api, second["flow_id"], totp_code=code_at(secret, 1))).status_code == 200


@pytest.mark.parametrize(("steps", "accepted"), [(-1, True), (1, True), (-2, False), (2, False)])
async def test_clock_skew_of_one_step_either_side(api: Api, steps: int, accepted: bool) -> None:
    user = await api.user()
    r = await api.client.post("/v1/mfa/totp", headers=api.bearer(user["access_token"]))
    secret = r.json()["secret"]
    r = await api.client.post(
        "/v1/mfa/totp/confirm",
        json={"code": code_at(secret, steps)},
        headers=api.bearer(user["access_token"]),
    )
    assert (r.status_code == 204) is accepted, r.text


async def test_wrong_codes_end_the_flow_and_count_toward_lockout(api: Api) -> None:
    user = await api.user()
    secret = await enrol_totp(api, user["access_token"])
    flow = await mfa_flow(api, user)
    right = code_at(secret)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(4):
        r = await finish(api, flow["flow_id"], totp_code=wrong)
        assert r.status_code == 401
    # The fifth wrong code locks the account (threshold 5) and ends the flow.
    r = await finish(api, flow["flow_id"], totp_code=wrong)
    assert r.status_code in (401, 429)
    r = await finish(api, flow["flow_id"], totp_code=right)
    assert r.status_code in (410, 429)
    r = await api.login(user["email"], user["password"])
    assert r.status_code == 429
    assert r.json()["type"].endswith("/account-locked")


async def test_wrong_password_says_nothing_of_a_second_factor(api: Api) -> None:
    user = await api.user()
    await enrol_totp(api, user["access_token"])
    r = await api.login(user["email"], "not the password at all")
    assert r.status_code == 401
    body = r.json()
    assert body["type"].endswith("/invalid-credentials")
    assert "flow_id" not in body
    assert "methods" not in body


@pytest.mark.parametrize(
    "flow_id",
    ["", "nonsense", "00000000-0000-0000-0000-000000000000.short", "x" * 128],
)
async def test_malformed_or_unknown_flow_ids(api: Api, flow_id: str) -> None:
    r = await finish(api, flow_id, totp_code="123456")
    assert r.status_code in (410, 422), r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_another_clients_flow_cannot_be_continued(api: Api) -> None:
    user = await api.user()
    secret = await enrol_totp(api, user["access_token"])
    flow = await mfa_flow(api, user)
    flow_uuid = flow["flow_id"].split(".")[0]
    forged = f"{flow_uuid}.{'A' * 43}"
    r = await finish(api, forged, totp_code=code_at(secret))
    assert r.status_code == 410


async def test_exactly_one_factor_per_request(api: Api) -> None:
    r = await api.client.post(
        "/v1/auth/login/mfa",
        json={"flow_id": "a.b", "totp_code": "123456", "recovery_code": "abcd"},
    )
    assert r.status_code == 422


async def _flows(api: Api) -> int:
    async with api.services.db.single() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM flows"))).scalar_one())


async def test_the_code_sent_with_the_password_finishes_in_one_request(api: Api) -> None:
    user = await api.user()
    secret = await enrol_totp(api, user["access_token"])
    before = await _flows(api)
    code = code_at(secret)
    body = {"email": user["email"], "password": user["password"], "totp_code": code}
    r = await api.client.post("/v1/auth/login", json=body)
    assert r.status_code == 200, r.text
    found = claims(r.json()["access_token"])
    assert (found["amr"], found["acr"]) == (["pwd", "otp", "mfa"], "aal2")
    assert await _flows(api) == before  # nothing to continue: no flow written
    # The code was spent: the same code again, even with the right password, is refused.
    again = await api.client.post("/v1/auth/login", json=body)
    assert again.status_code == 401
    assert again.json()["type"].endswith("/invalid-factor")


async def test_the_code_with_the_password_reads_the_secret_with_the_factors(api: Api) -> None:
    # The one-request sign-in is bounded by the password hash only if the code costs little
    # beyond it: the sealed secret comes in the statement that reads the user's factors (which
    # every sign-in runs), and the only other statement on the table spends the code's step.
    user = await api.user()
    secret = await enrol_totp(api, user["access_token"])
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "mfa_totp" in statement:
            seen.append(statement.split(None, 1)[0].upper())

    engine = api.services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        body = {"email": user["email"], "password": user["password"], "totp_code": code_at(secret)}
        r = await api.client.post("/v1/auth/login", json=body)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert r.status_code == 200, r.text
    assert sorted(seen) == ["SELECT", "UPDATE"]


async def test_a_wrong_code_with_the_password_is_a_wrong_factor_and_counts(api: Api) -> None:
    user = await api.user()
    secret = await enrol_totp(api, user["access_token"])
    right = code_at(secret)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    body = {"email": user["email"], "password": user["password"], "totp_code": wrong}
    for _ in range(4):
        r = await api.client.post("/v1/auth/login", json=body)
        assert r.status_code == 401
        assert r.json()["type"].endswith("/invalid-factor")
    # Counted like the second step's wrong codes: the fifth locks the account.
    r = await api.client.post("/v1/auth/login", json=body)
    assert r.status_code in (401, 429)
    r = await api.client.post("/v1/auth/login", json={**body, "totp_code": right})
    assert r.status_code == 429
    assert r.json()["type"].endswith("/account-locked")


async def test_a_code_with_a_wrong_password_reveals_nothing(api: Api) -> None:
    user = await api.user()
    secret = await enrol_totp(api, user["access_token"])
    body = {"email": user["email"], "password": "not the password", "totp_code": code_at(secret)}
    r = await api.client.post("/v1/auth/login", json=body)
    assert r.status_code == 401
    assert r.json()["type"].endswith("/invalid-credentials")


async def test_a_code_the_account_cannot_use_changes_nothing(api: Api) -> None:
    # Without an authenticator app the code is not asked for: a plain sign-in.
    plain = await api.user()
    body = {"email": plain["email"], "password": plain["password"], "totp_code": "123456"}
    r = await api.client.post("/v1/auth/login", json=body)
    assert r.status_code == 200, r.text
    assert claims(r.json()["access_token"])["acr"] == "aal1"
