"""`config check`: the security audit's rules, severities and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from auth_service.cli.config_audit import Level, audit, exit_code
from auth_service.cli.main import app
from auth_service.config.loader import LoadedSettings, load_settings
from auth_service.config.settings import Settings
from auth_service.security.aead import MasterKey

REPO = Path(__file__).resolve().parents[3]
GOOD_KEY = MasterKey.generate_text()


def production(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "env": "production",
        "master_key": GOOD_KEY,
        "database": {"url": "postgresql+asyncpg://auth@db/auth"},
        "redis": {"url": "redis://redis:6379/0"},
        "server": {"public_url": "https://auth.example.com", "management_host": "10.0.0.5"},
        "mail": {"backend": "smtp", "smtp_host": "smtp.example.com"},
        "mfa": {"required_roles": ["admin"]},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def keys_of(data: dict[str, Any], sources: dict[str, str] | None = None) -> dict[str, Level]:
    findings = audit(LoadedSettings(Settings(**data), sources or {}))
    return {f.key: f.level for f in findings}


def test_clean_production_has_no_findings() -> None:
    assert keys_of(production()) == {}


@pytest.mark.parametrize(
    ("overrides", "key", "level"),
    [
        ({"debug": True}, "debug", Level.critical),
        ({"database": {"url": None}}, "database.url", Level.error),
        ({"redis": {"url": None}, "server": {"workers": 4}}, "rate_limits.storage", Level.error),
        ({"redis": {"url": None}}, "rate_limits.storage", Level.warning),
        (
            {"server": {"public_url": "http://auth.example.com"}},
            "server.public_url",
            Level.critical,
        ),
        (
            {"server": {"cors_origins": ["*"], "cors_allow_credentials": True}},
            "server.cors_origins",
            Level.critical,
        ),
        ({"master_key": None}, "master_key", Level.critical),
        (
            {"master_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
            "master_key",
            Level.critical,
        ),
        (
            {"passwords": {"argon2_memory_cost_kib": 4096, "argon2_time_cost": 2}},
            "passwords.argon2_memory_cost_kib",
            Level.error,
        ),
        (
            {"tokens": {"access_token_ttl_seconds": 7200}},
            "tokens.access_token_ttl_seconds",
            Level.warning,
        ),
        (
            {"tokens": {"refresh_reuse_grace_seconds": 120}},
            "tokens.refresh_reuse_grace_seconds",
            Level.error,
        ),
        ({"mail": {"smtp_starttls": False}}, "mail.smtp_starttls", Level.error),
        ({"mail": {"smtp_validate_certs": False}}, "mail.smtp_validate_certs", Level.error),
        ({"server": {"management_host": "0.0.0.0"}}, "server.management_host", Level.warning),  # noqa: S104
        ({"rate_limits": {"enabled": False}}, "rate_limits.enabled", Level.error),
        ({"mfa": {"required_roles": []}}, "mfa.required_roles", Level.warning),
        ({"mfa": {"enabled": False}}, "mfa.required_roles", Level.warning),
    ],
)
def test_rule(overrides: dict[str, Any], key: str, level: Level) -> None:
    assert keys_of(production(**overrides)).get(key) == level


def test_argon2_owasp_alternatives_pass() -> None:
    ok = production(passwords={"argon2_memory_cost_kib": 12288, "argon2_time_cost": 3})
    assert "passwords.argon2_memory_cost_kib" not in keys_of(ok)


def test_development_is_lenient() -> None:
    dev = {"passwords": {"argon2_memory_cost_kib": 1024, "argon2_time_cost": 1}}
    assert keys_of(dev) == {"passwords.argon2_memory_cost_kib": Level.info}


def test_inline_secret_in_a_file_is_an_error() -> None:
    sources = {"master_key": "file config/production.yaml"}
    assert keys_of(production(), sources) == {"master_key": Level.error}


def test_exit_code_is_the_worst_severity() -> None:
    loaded = LoadedSettings(Settings(**production(debug=True)), {})
    assert exit_code(audit(loaded)) == 5
    assert exit_code([]) == 0


def _secret_env(tmp_path: Path) -> dict[str, str]:
    files = {
        "AUTH_MASTER_KEY_FILE": GOOD_KEY,
        "AUTH_DATABASE__URL_FILE": "postgresql+asyncpg://auth@db:5432/auth",
        "AUTH_REDIS__URL_FILE": "redis://redis:6379/0",
    }
    env = {}
    for var, value in files.items():
        path = tmp_path / var.lower()
        path.write_text(value + "\n")
        env[var] = str(path)
    return env


def test_committed_production_profile_passes_with_deployment_secrets(tmp_path: Path) -> None:
    loaded = load_settings(REPO / "config" / "production.yaml", _secret_env(tmp_path))
    assert [f.as_dict() for f in audit(loaded)] == []


def test_production_profile_without_secrets_names_only_secret_findings() -> None:
    loaded = load_settings(REPO / "config" / "production.yaml", {})
    assert {f.key for f in audit(loaded)} == {"master_key", "database.url", "redis.url"}


def test_cli_json_and_exit_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(REPO)
    for var in [v for v in __import__("os").environ if v.startswith("AUTH_")]:
        monkeypatch.delenv(var)
    result = CliRunner().invoke(app, ["config", "check", "--env", "production", "--format", "json"])
    assert result.exit_code == 5, result.output
    body = json.loads(result.stdout)
    assert body["env"] == "production"
    assert {f["level"] for f in body["findings"]} == {"critical", "error"}
    for var, path in _secret_env(tmp_path).items():
        monkeypatch.setenv(var, path)
    result = CliRunner().invoke(app, ["config", "check", "--env", "production"])
    assert result.exit_code == 0, result.output
    assert "no findings" in result.stdout


def test_cli_rejects_unknown_env() -> None:
    result = CliRunner().invoke(app, ["config", "check", "--env", "prod"])
    assert result.exit_code == 2
    assert "expected one of development, staging, production" in result.output
