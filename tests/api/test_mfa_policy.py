"""MFA policy over the JSON API, on both databases: roles that require a second factor (grace
period, then enrolment forced at sign-in), step-up of sensitive operations (acr, recent
auth_time), the admin's reset of a user's factors."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest

from auth_service.audit.context import RequestContext
from tests.support.api import Api
from tests.support.mfa import MFA_SETTINGS, code_at, enrol_totp, finish, mfa_flow
from tests.support.settings import PASSWORD


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


async def _admin(api: Api) -> dict[str, Any]:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    await api.services.accounts.registration.create_user(
        email, PASSWORD, admin=True, ctx=RequestContext()
    )
    return {"email": email, "password": PASSWORD}


def settings(**mfa: Any) -> dict[str, Any]:
    return {**MFA_SETTINGS, "mfa": mfa}


@pytest.mark.parametrize(
    "settings_overrides",
    [settings(required_roles=["admin"], enrolment_grace_days=0)],
    indirect=True,
)
async def test_a_required_role_enrols_at_sign_in_after_the_grace(api: Api) -> None:
    admin = await _admin(api)
    flow = await mfa_flow(api, admin)
    assert flow["enrolment_required"] is True
    assert flow["methods"] == ["totp"]
    r = await api.client.post("/v1/auth/login/enrol", json={"flow_id": flow["flow_id"]})
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    # Asking again shows the same pending secret (a page reload must not change the QR code).
    again = await api.client.post("/v1/auth/login/enrol", json={"flow_id": flow["flow_id"]})
    assert again.json()["secret"] == secret
    r = await finish(api, flow["flow_id"], totp_code=code_at(secret))
    assert r.status_code == 200, r.text
    assert claims(r.json()["access_token"])["acr"] == "aal2"
    # From now on the factor is asked like any other user's.
    assert (await mfa_flow(api, admin))["methods"] == ["totp"]


@pytest.mark.parametrize(
    "settings_overrides",
    [settings(required_roles=["admin"], enrolment_grace_days=7)],
    indirect=True,
)
async def test_inside_the_grace_period_the_password_still_signs_in(api: Api) -> None:
    admin = await _admin(api)
    r = await api.login(admin["email"], admin["password"])
    assert r.status_code == 200
    me = await api.client.get("/v1/users/me", headers=api.bearer(r.json()["access_token"]))
    summary = await api.services.mfa.summary(uuid.UUID(me.json()["id"]))
    assert summary.grace_started_at is not None
    r = await api.client.get("/v1/mfa", headers=api.bearer(r.json()["access_token"]))
    assert r.json()["required"] is True
    # Other roles are not concerned.
    assert (await api.user())["access_token"]


@pytest.mark.parametrize(
    "settings_overrides",
    [settings(step_up={"password_change": {"acr": "aal2"}})],
    indirect=True,
)
async def test_password_change_can_require_aal2(api: Api) -> None:
    user = await api.user()
    body = {"current_password": user["password"], "new_password": "another long passphrase 9"}
    r = await api.client.post(
        "/v1/auth/password/change", json=body, headers=api.bearer(user["access_token"])
    )
    assert r.status_code == 403
    problem = r.json()
    assert problem["type"].endswith("/step-up-required")
    assert problem["required_acr"] == "aal2"
    secret = await enrol_totp(api, user["access_token"])
    flow = await mfa_flow(api, user)
    strong = (await finish(api, flow["flow_id"], totp_code=code_at(secret))).json()
    r = await api.client.post(
        "/v1/auth/password/change", json=body, headers=api.bearer(strong["access_token"])
    )
    assert r.status_code == 204, r.text


@pytest.mark.parametrize("settings_overrides", [MFA_SETTINGS], indirect=True)
async def test_removing_a_factor_needs_a_recent_sign_in(api: Api) -> None:
    user = await api.user()
    await enrol_totp(api, user["access_token"])
    found = claims(user["access_token"])
    services = api.services
    old = await services.access_tokens.issue(
        uuid.UUID(found["sub"]),
        uuid.UUID(found["sid"]),
        uuid.UUID(found["tid"]),
        [],
        amr=["pwd"],
        acr="aal1",
        auth_time=int(time.time()) - 3600,
    )
    r = await api.client.delete("/v1/mfa/totp", headers=api.bearer(old.token))
    assert r.status_code == 403
    assert r.json()["max_age"] == 900
    r = await api.client.post("/v1/mfa/recovery-codes", headers=api.bearer(old.token))
    assert r.status_code == 200  # the first set needs no fresh sign-in...
    r = await api.client.post("/v1/mfa/recovery-codes", headers=api.bearer(old.token))
    assert r.status_code == 403  # ...regenerating does
    r = await api.client.delete("/v1/mfa/totp", headers=api.bearer(user["access_token"]))
    assert r.status_code == 204


@pytest.mark.parametrize("settings_overrides", [MFA_SETTINGS], indirect=True)
async def test_admin_resets_a_users_factors(api: Api) -> None:
    admin = await _admin(api)
    admin_token = (await api.login(admin["email"], admin["password"])).json()["access_token"]
    user = await api.user()
    await enrol_totp(api, user["access_token"])
    user_id = claims(user["access_token"])["sub"]
    r = await api.client.delete(f"/v1/admin/users/{user_id}/mfa", headers=api.bearer(admin_token))
    assert r.status_code == 204
    assert (await api.login(user["email"], user["password"])).status_code == 200
    events, _ = await api.services.audit.query(
        user_id=uuid.UUID(user_id), event_type="admin.mfa_reset", limit=5, offset=0
    )
    assert len(events) == 1
    mails = [m for m in await api.mail() if user["email"] in m]
    assert any("Your second factors were reset" in m for m in mails)
    r = await api.client.delete(
        f"/v1/admin/users/{uuid.uuid4()}/mfa", headers=api.bearer(admin_token)
    )
    assert r.status_code == 404
    r = await api.client.delete(
        f"/v1/admin/users/{user_id}/mfa", headers=api.bearer(user["access_token"])
    )
    assert r.status_code == 403


@pytest.mark.parametrize(
    "settings_overrides", [settings(step_up={"admin": {"acr": "aal2"}})], indirect=True
)
async def test_admin_actions_can_require_aal2(api: Api) -> None:
    admin = await _admin(api)
    token = (await api.login(admin["email"], admin["password"])).json()["access_token"]
    r = await api.client.get("/v1/admin/users", headers=api.bearer(token))
    assert r.status_code == 403
    assert r.json()["type"].endswith("/step-up-required")
