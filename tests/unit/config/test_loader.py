"""Profiles, precedence, ${VAR} interpolation and validation messages that name key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from auth_service.config.loader import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[3]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "auth.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("env", ["development", "staging", "production"])
def test_every_profile_loads(env: str) -> None:
    loaded = load_settings(REPO / "config" / f"{env}.yaml", {})
    assert loaded.settings.env.value == env


def test_precedence_file_then_secret_file_then_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: 8100\n  workers: 3\nredis:\n  url: redis://file/0\n")
    secret = tmp_path / "redis-url"
    secret.write_text("redis://secret/0\n")
    loaded = load_settings(path, {"AUTH_REDIS__URL_FILE": str(secret), "AUTH_SERVER__WORKERS": "5"})
    s = loaded.settings
    assert s.server.port == 8100
    assert s.server.workers == 5
    assert s.redis.url is not None
    assert s.redis.url.get_secret_value() == "redis://secret/0"
    assert loaded.sources["server.port"] == f"file {path}"
    assert loaded.sources["server.workers"] == "environment AUTH_SERVER__WORKERS"
    assert loaded.sources["redis.url"].startswith("secret file")


def test_variables_expand_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  public_url: ${PUBLIC}\n  management_host: ${IP:-10.1.2.3}\n")
    s = load_settings(path, {"PUBLIC": "https://id.example.org"}).settings
    assert s.server.public_url == "https://id.example.org"
    assert s.server.management_host == "10.1.2.3"


def test_unset_variable_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  public_url: ${NOPE}\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path, {})
    assert (
        str(exc.value)
        == f"server.public_url: ${{NOPE}} is not set in the environment (from file {path})"
    )


@pytest.mark.parametrize(
    ("text", "starts"),
    [
        ("rate_limits:\n  login_per_ipp: 5/minute\n", "rate_limits.login_per_ipp: Extra inputs"),
        ("server:\n  port: 70000\n", "server.port: Input should be less than"),
        ("passwords:\n  min_length: 50\n  max_length: 20\n", "passwords: Value error, min_len"),
        ("alerting:\n  channels:\n    - {type: pigeon, name: x}\n", "alerting.channels.0: "),
    ],
    ids=["unknown key", "bad value", "section rule", "list item"],
)
def test_errors_name_key_and_file(tmp_path: Path, text: str, starts: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_settings(path, {})
    assert str(exc.value).startswith(starts)
    assert str(exc.value).endswith(f"(from file {path})")


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: [1,\n")
    with pytest.raises(ConfigError, match=r"line \d+ invalid YAML"):
        load_settings(path, {})


def test_config_show_sources_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from auth_service.cli.main import app

    for var in [v for v in __import__("os").environ if v.startswith("AUTH_")]:
        monkeypatch.delenv(var)
    path = write(tmp_path, "server:\n  port: 8100\n")
    secret = tmp_path / "db-url"
    secret.write_text("postgresql+asyncpg://auth:hunter2@db/auth")
    monkeypatch.setenv("AUTH_DATABASE__URL_FILE", str(secret))
    monkeypatch.setenv("AUTH_LOGGING__LEVEL", "WARNING")
    result = CliRunner().invoke(
        app, ["--config", str(path), "config", "show", "--sources", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.stdout
    body = json.loads(result.stdout)
    assert body["settings"]["database"]["url"] == "********"
    assert body["sources"] == {
        "database.url": f"secret file {secret} (AUTH_DATABASE__URL_FILE)",
        "logging.level": "environment AUTH_LOGGING__LEVEL",
        "server.port": f"file {path}",
    }
