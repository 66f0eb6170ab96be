"""`auth-service connectors ...` as an operator runs it, on the embedded SQLite database:
the contract's commands and flags, JSON output, the secret stored sealed and never printed,
every change audited, refusals as one line."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import CLI, base_env, migrate

SECRET = "an-upstream-client-credential-value"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = base_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}")
    migrate(tmp_path, environment)
    return environment


def _run(env: dict[str, str], tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [CLI, "connectors", *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _json(env: dict[str, str], tmp: Path, *args: str) -> Any:
    result = _run(env, tmp, *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout
    return json.loads(result.stdout)


def _db(tmp: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp / "auth.db") as conn:
        return conn.execute(sql).fetchall()


def test_connectors_lifecycle(env: dict[str, str], tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    created = _json(
        env,
        tmp_path,
        *("create", "--id", "corp", "--name", "Corp SSO", "--type", "oidc"),
        *("--issuer", "https://sso.example.com/", "--client-id", "rp-1"),
        *("--client-secret-file", str(secret_file), "--scope", "openid email"),
        "--trust-email",
    )
    assert created["issuer"] == "https://sso.example.com"
    assert created["client_secret_set"] is True
    assert created["trust_email"] is True
    assert created["redirect_uri"].endswith("/login/federated/corp/callback")
    sealed = _db(tmp_path, "SELECT client_secret_sealed FROM federation_connectors")[0][0]
    assert SECRET.encode() not in sealed

    google = _json(
        env, tmp_path, "create", "--id", "google", "--name", "Google", "--type", "google",
        "--client-id", "g-1",
    )  # fmt: skip
    assert google["issuer"] == "https://accounts.google.com"
    assert google["scope"] == "openid email profile"

    assert [c["id"] for c in _json(env, tmp_path, "list")] == ["corp", "google"]
    assert _json(env, tmp_path, "disable", "corp")["enabled"] is False
    assert _json(env, tmp_path, "enable", "corp")["enabled"] is True
    updated = _json(env, tmp_path, "update", "corp", "--name", "Corp", "--no-trust-email")
    assert (updated["name"], updated["trust_email"]) == ("Corp", False)
    assert _json(env, tmp_path, "show", "corp")["name"] == "Corp"
    assert _run(env, tmp_path, "delete", "google").returncode == 0
    assert [c["id"] for c in _json(env, tmp_path, "list")] == ["corp"]

    query = "SELECT type FROM audit_events WHERE type LIKE 'federation.%' ORDER BY occurred_at"
    audited = [row[0] for row in _db(tmp_path, query)]
    assert audited == [
        "federation.connector_created",
        "federation.connector_created",
        *["federation.connector_updated"] * 3,
        "federation.connector_deleted",
    ]


def test_github_and_generic_oauth2_connectors(env: dict[str, str], tmp_path: Path) -> None:
    github = _json(
        env, tmp_path, "create", "--id", "github", "--name", "GitHub", "--type", "github",
        "--client-id", "Iv1.abc",
    )  # fmt: skip
    assert github["issuer"] == "https://github.com"
    assert github["scope"] == "read:user user:email"
    assert github["token_url"] == "https://github.com/login/oauth/access_token"
    assert github["userinfo_url"] == "https://api.github.com/user"

    made = _json(
        env,
        tmp_path,
        *("create", "--id", "corp", "--name", "Corp", "--type", "oauth2", "--client-id", "c"),
        *("--authorization-url", "https://sso.example.com/oauth/authorize?tenant=1"),
        *("--token-url", "https://sso.example.com/oauth/token"),
        *("--userinfo-url", "https://api.example.com/me", "--scope", "profile"),
        *("--claim", "subject=/data/uid", "--claim", "email=data.mail"),
        *("--group-role", "corp-admins=admin", "--store-tokens"),
    )
    assert made["issuer"] == "https://sso.example.com"  # shown: the authorization URL's origin
    assert made["claims"]["subject"] == "/data/uid"
    assert made["claims"]["name"] == "name"  # the defaults fill the rest
    assert made["group_roles"] == {"corp-admins": "admin"}
    assert made["store_tokens"] is True
    changed = _json(env, tmp_path, "update", "corp", "--no-store-tokens", "--claim", "name=nick")
    assert changed["store_tokens"] is False
    assert changed["claims"]["name"] == "nick"
    assert changed["claims"]["subject"] == "sub"  # --claim replaces the whole mapping


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--type", "oidc", "--issuer", "http://sso.example.com"), "https"),
        (("--type", "oidc"), "issuer is required"),
        (("--type", "oauth2", "--scope", "profile"), "needs authorization_url"),
        (("--type", "github", "--claim", "subject"), "NAME=VALUE"),
        (("--type", "github", "--authorization-url", "https://x.example/a"), "only for an oauth2"),
        (("--type", "oidc", "--issuer", "https://x.example", "--scope", "email"), "openid"),
    ],
)
def test_refusals_are_one_line(
    env: dict[str, str], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = _run(
        env, tmp_path, "create", "--id", "bad", "--name", "Bad", "--client-id", "x", *args
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert _run(env, tmp_path, "show", "bad").returncode != 0
