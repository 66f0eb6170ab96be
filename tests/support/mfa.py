"""Second factors over the JSON API, as the MFA tests drive them."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp

from tests.support.api import Api

ORIGIN = "http://localhost:8000"
# WebAuthn needs a domain as RP id: the in-process app says its public URL is localhost.
MFA_SETTINGS: dict[str, Any] = {"server": {"public_url": ORIGIN}}


def code_at(secret: str, steps_from_now: int = 0) -> str:
    """The TOTP code of a step relative to now (RFC 6238: 30-second steps)."""
    when = datetime.now(UTC) + timedelta(seconds=30 * steps_from_now)
    return pyotp.TOTP(secret).at(when)


async def enrol_totp(api: Api, access_token: str) -> str:
    """Set up and confirm an authenticator app; its secret. The confirming code is of the
    previous step, so the current one is still free for a sign-in."""
    r = await api.client.post("/v1/mfa/totp", headers=api.bearer(access_token))
    assert r.status_code == 200, r.text
    secret = str(r.json()["secret"])
    # Near the end of a step the previous step's code may reach the server two steps late
    # (outside its one-step window) on a loaded machine: start the next step first.
    into_step = time.time() % 30
    if into_step > 25:
        await asyncio.sleep(30.2 - into_step)
    r = await api.client.post(
        "/v1/mfa/totp/confirm",
        json={"code": code_at(secret, -1)},
        headers=api.bearer(access_token),
    )
    assert r.status_code == 204, r.text
    return secret


async def mfa_flow(api: Api, user: dict[str, Any]) -> dict[str, Any]:
    """Sign in with the password; the mfa-required problem body."""
    r = await api.login(user["email"], user["password"])
    assert r.status_code == 401, r.text
    body: dict[str, Any] = r.json()
    assert body["type"].endswith("/mfa-required"), body
    return body


async def finish(api: Api, flow_id: str, **factor: Any) -> Any:
    return await api.client.post("/v1/auth/login/mfa", json={"flow_id": flow_id, **factor})
