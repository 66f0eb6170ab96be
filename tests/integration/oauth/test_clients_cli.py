"""`auth-service clients ...` as an operator runs it, on the embedded SQLite database: the
secret printed once, JSON output, rotation with overlap, update, delete, refusals."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.secrets import remember
from tests.support.server import CLI, base_env, migrate


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = base_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}")
    migrate(tmp_path, environment)
    return environment


def _run(env: dict[str, str], tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "clients", *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=60
    )


def _json(env: dict[str, str], tmp: Path, *args: str) -> Any:
    result = _run(env, tmp, *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_clients_lifecycle(env: dict[str, str], tmp_path: Path) -> None:
    created = _json(
        env,
        tmp_path,
        "create",
        "--name",
        "Web",
        "--type",
        "confidential",
        "--redirect-uri",
        "https://app.example.com/cb",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--scope",
        "openid profile offline_access",
        "--first-party",
    )
    remember(created["client_secret"])
    client_id = created["client_id"]
    assert created["redirect_uris"] == ["https://app.example.com/cb", "http://127.0.0.1/cb"]
    assert created["first_party"] is True
    shown = _json(env, tmp_path, "show", client_id)
    assert "client_secret" not in shown  # shown once, at creation
    assert [c["client_id"] for c in _json(env, tmp_path, "list")] == [client_id]
    rotated = _json(env, tmp_path, "rotate-secret", client_id, "--overlap-seconds", "60")
    remember(rotated["client_secret"])
    assert rotated["client_secret"] != created["client_secret"]
    assert rotated["previous_secret_expires_at"]
    updated = _json(env, tmp_path, "update", client_id, "--name", "Web 2", "--third-party")
    assert updated["name"] == "Web 2"
    assert updated["first_party"] is False
    assert updated["redirect_uris"] == created["redirect_uris"]  # untouched
    assert _run(env, tmp_path, "delete", client_id).returncode == 0
    missing = _run(env, tmp_path, "show", client_id)
    assert missing.returncode == 1
    assert "no client" in missing.stderr


REFUSED = [
    ["--type", "public", "--grant-type", "client_credentials"],
    ["--type", "confidential", "--redirect-uri", "http://app.example.com/cb"],
    ["--type", "confidential", "--redirect-uri", "https://a.example/cb#frag"],
    ["--type", "confidential", "--redirect-uri", "https://a.example/*"],
    ["--type", "confidential", "--grant-type", "password", "--redirect-uri", "https://a/cb"],
    ["--type", "confidential", "--redirect-uri", "https://a/cb", "--scope", "openid root"],
]


def test_refusals_are_one_line(env: dict[str, str], tmp_path: Path) -> None:
    for args in REFUSED:
        result = _run(env, tmp_path, "create", "--name", "X", *args)
        assert result.returncode == 1, args
        assert "error: refused:" in result.stderr, args
        assert "Traceback" not in result.stderr
