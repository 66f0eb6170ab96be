"""Runtime.apply swaps reloaded settings into the real services; a rejected reload alerts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml
from sqlalchemy import text, update

from auth_service.audit import events
from auth_service.observability import metrics
from auth_service.runtime.process import RELOAD_ALERT
from auth_service.sessions.models import Session
from tests.support.api import Api
from tests.support.problems import assert_problem
from tests.support.reload import dump, runtime_of


async def _idle_for(api: Api, session_id: str, seconds: float) -> None:
    """Make a session look unused for ``seconds`` (as if its owner had gone away)."""
    async with api.services.db.transaction() as s:
        await s.execute(
            update(Session)
            .where(Session.id == uuid.UUID(session_id))
            .values(last_used_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )


async def _refresh(api: Api, token: str) -> httpx.Response:
    return await api.client.post("/v1/auth/refresh", json={"refresh_token": token})


async def test_the_database_swap_is_the_first_reload_hook(api: Api, tmp_path: Path) -> None:
    # It is the one hook that can refuse a configuration: nothing may have changed before it.
    runtime = runtime_of(api, tmp_path / "auth.yaml")
    assert runtime.hooks.names == [
        "database",
        "rate_limits",
        "lockout",
        "passwords",
        "keys",
        "access_tokens",
        "sessions",
        "accounts",
        "oauth",
        "mfa",
        "webhooks",
        "settings",
        "cors",
        "logging",
        "alerting",
        "health",
    ]


async def test_reload_applies_to_every_service(api: Api, tmp_path: Path) -> None:
    before = await api.client.options(
        "/v1/auth/login",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in before.headers
    # Two sessions of one user, from before the reload: a two-hour idle session refreshes
    # under the default idle limit (7 days).
    owner = await api.user()
    other = await api.login(owner["email"], owner["password"])
    await _idle_for(api, owner["session_id"], 2 * 3600)
    r = await _refresh(api, owner["refresh_token"])
    assert r.status_code == 200, r.text
    refresh_token = r.json()["refresh_token"]

    path = tmp_path / "auth.yaml"
    data = dump(api.services.settings)
    data["lockout"]["threshold"] = 2
    data["tokens"]["access_token_ttl_seconds"] = 120
    data["tokens"]["refresh_idle_ttl_seconds"] = 3600
    data["passwords"]["min_length"] = 12
    data["rate_limits"]["login_per_ip"] = "4/minute"
    data["server"]["port"] = 8123
    data["server"]["cors_origins"] = ["https://app.example.com"]
    path.write_text(yaml.safe_dump(data))
    runtime = runtime_of(api, path)
    applied_before = metrics.CONFIG_RELOADS.labels("applied")._value.get()

    result = await runtime.reloader.reload("test")

    assert result.result == "applied", result
    assert metrics.CONFIG_RELOADS.labels("applied")._value.get() == applied_before + 1
    assert metrics.CONFIG_INFO.labels(result.hash)._value.get() == 1
    assert result.restart_required == ["server.port"]
    preflight = await api.client.options(
        "/v1/auth/login",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    svc = api.services
    assert svc.settings.lockout.threshold == 2
    assert svc.lockout.settings.threshold == 2
    assert svc.settings.server.port != 8123
    # Behaviour, through HTTP, one setting at a time: the password policy, the access-token
    # lifetime, the idle limit of sessions, the lockout threshold and the per-IP login limit
    # (which counts from zero under its new rate).
    weak = await api.register("new-policy@example.com", "Elevenchars")
    assert_problem(weak, 422, "weak-password")
    user = await api.user()  # login 1 of 4
    assert user["expires_in"] == 120
    await _idle_for(api, owner["session_id"], 2 * 3600)
    assert_problem(await _refresh(api, refresh_token), 401, "invalid-refresh-token")
    await _idle_for(api, other.json()["session_id"], 1800)
    assert (await _refresh(api, other.json()["refresh_token"])).status_code == 200
    assert (await api.login(user["email"], "wrong-password-1")).status_code == 401
    assert (await api.login(user["email"], "wrong-password-1")).status_code == 401
    assert_problem(await api.login(user["email"], user["password"]), 429, "account-locked")
    assert_problem(await api.login("nobody@example.com", "any-password-1"), 429, "rate-limited")
    async with svc.db.sessionmaker() as s:
        rows = (
            await s.execute(
                text("SELECT details FROM audit_events WHERE type = :t"),
                {"t": events.CONFIG_RELOADED},
            )
        ).all()
    assert len(rows) == 1
    details = rows[0][0] if isinstance(rows[0][0], dict) else json.loads(rows[0][0])
    assert "lockout.threshold" in details["applied"]
    assert details["restart_required"] == ["server.port"]


async def test_rejected_reload_raises_an_alert_and_a_good_one_resolves_it(
    api: Api, tmp_path: Path
) -> None:
    path = tmp_path / "auth.yaml"
    path.write_text("lockout: {threshold: -1}\n")
    runtime = runtime_of(api, path)
    result = await runtime.reloader.reload("test")
    assert result.result == "error"
    assert result.error is not None
    assert result.error.startswith("lockout.threshold")
    assert RELOAD_ALERT in runtime.alerter._active
    path.write_text(yaml.safe_dump(dump(api.services.settings)))
    assert (await runtime.reloader.reload("test")).result == "unchanged"
    assert RELOAD_ALERT not in runtime.alerter._active
