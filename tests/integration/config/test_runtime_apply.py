"""Runtime.apply swaps reloaded settings into the real services; a rejected reload alerts."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from auth_service.audit import events
from auth_service.health.runtime import RELOAD_ALERT
from tests.integration.config.reload_support import dump, runtime_of
from tests.support.api import Api


async def test_reload_applies_to_every_service(api: Api, tmp_path: Path) -> None:
    before = await api.client.options(
        "/v1/auth/login",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in before.headers
    path = tmp_path / "auth.yaml"
    data = dump(api.services.settings)
    data["lockout"]["threshold"] = 2
    data["tokens"]["access_token_ttl_seconds"] = 120
    data["tokens"]["refresh_idle_ttl_seconds"] = 3600
    data["passwords"]["min_length"] = 12
    data["rate_limits"]["login_per_ip"] = "2/minute"
    data["server"]["port"] = 8123
    data["server"]["cors_origins"] = ["https://app.example.com"]
    path.write_text(yaml.safe_dump(data))
    runtime = runtime_of(api, path)

    result = await runtime.reloader.reload("test")

    assert result.result == "applied", result
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
    # Behaviour, through HTTP: the new password policy and access-token lifetime.
    weak = await api.register("new-policy@example.com", "Elevenchars")
    assert weak.status_code == 422
    user = await api.user()
    assert user["expires_in"] == 120
    codes = [
        (await api.login("nobody@example.com", "wrong-password-1")).status_code for _ in range(3)
    ]
    assert codes[-1] == 429
    async with svc.db.sessionmaker() as s:
        from sqlalchemy import text

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
