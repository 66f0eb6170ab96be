"""Runtime.apply swaps reloaded settings into the real services; a rejected reload alerts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from auth_service.audit import events
from auth_service.config.settings import Settings
from auth_service.observability import metrics
from auth_service.runtime.process import RELOAD_ALERT, Runtime
from tests.conftest import Api


def _revealed(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _revealed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_revealed(v) for v in value]
    return value


def dump(settings: Settings) -> dict[str, Any]:
    """The settings as a config file would hold them (secrets included)."""
    data: dict[str, Any] = json.loads(json.dumps(_revealed(settings.model_dump()), default=str))
    return data


def runtime_of(api: Api, path: Path) -> Runtime:
    runtime: Runtime = api.management._transport.app.state.runtime  # type: ignore[attr-defined]
    runtime.reloader.config_file = path
    runtime.reloader._environ = {}
    return runtime


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
