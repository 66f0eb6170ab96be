"""The real `auth-service` console script managing existing accounts and listing things, on
SQLite and PostgreSQL.

List commands print every id and email whole when stdout is a pipe (rich would cut them at
80 columns) and a JSON array with stable keys under `--format json`. `users disable`,
`enable`, `promote`, `demote` and `reset` change an existing account through the accounts
use cases, audited; a refusal is one line on stderr and a non-zero exit saying what to do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import BOTH_DATABASES, fresh_postgres_database
from tests.support.settings import PASSWORD, TEST_MASTER_KEY

SCRIPT = Path(sys.executable).parent / "auth-service"
# Longer than rich's 80 columns on its own: any cut or wrap would show.
ROOT = "root.administrator.of.this.installation@operations.subdomain.example.com"
ADA = "ada.lovelace.analytical.engine@mathematics.department.example.org"
USER_KEYS = {
    "id",
    "email",
    "email_verified",
    "name",
    "created_at",
    "status",
    "roles",
    "last_login_at",
}
KEY_KEYS = {"kid", "algorithm", "status", "created_at", "activated_at", "publish_until"}


@pytest.fixture(params=BOTH_DATABASES)
def cli_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of an operator's shell: no COLUMNS (a pipe is 80 columns to rich), the
    suite's master key (so the in-process app can read what the CLI wrote)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_") and k != "COLUMNS"}
    env.update(
        AUTH_DATA_DIR=str(tmp_path / "data"),
        AUTH_MASTER_KEY=TEST_MASTER_KEY,
        AUTH_PASSWORDS__ARGON2_MEMORY_COST_KIB="1024",
        AUTH_PASSWORDS__ARGON2_TIME_COST="1",
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",
    )
    if request.param == "postgresql":
        with fresh_postgres_database("auth_cli_") as url:
            yield {**env, "AUTH_DATABASE__URL": url}
        return
    yield env


def _cli(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(SCRIPT), *args],
        env=env,
        cwd=env["AUTH_DATA_DIR"].rsplit("/", 1)[0],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


Call = tuple[tuple[str, ...], str | None]


def _call(*args: str, stdin: str | None = None) -> Call:
    return args, stdin


def _many(env: dict[str, str], *calls: Call) -> list[subprocess.CompletedProcess[str]]:
    """Independent invocations side by side (each pays the interpreter's start-up)."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(_cli, env, *args, stdin=stdin) for args, stdin in calls]
        return [f.result() for f in futures]


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode != 0, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _audit(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The audit lines the command logged (JSON on stderr)."""
    events = []
    for line in result.stderr.splitlines():
        if line.startswith("{") and '"log_type": "audit"' in line:
            events.append(json.loads(line))
    return events


def _setup(env: dict[str, str]) -> None:
    """Migrated, with an administrator (ROOT), a user (ADA) and signing keys."""
    _ok(_cli(env, "migrate"))
    create = ("users", "create", "--password-stdin", "--email")
    for created in _many(
        env,
        _call(*create, ROOT, "--admin", stdin=PASSWORD + "\n"),
        _call(*create, ADA, stdin=PASSWORD + "\n"),
        _call("keys", "rotate"),
    ):
        _ok(created)


def test_lists_print_whole_ids_and_emails_and_json(cli_env: dict[str, str]) -> None:
    _setup(cli_env)
    table, as_json, keys, keys_json, wrong = _many(
        cli_env,
        _call("users", "list"),
        _call("users", "list", "--format", "json"),
        _call("keys", "list"),
        _call("keys", "list", "--format", "JSON"),
        _call("users", "list", "--format", "yaml"),
    )
    users = {u["email"]: u for u in json.loads(_ok(as_json))}
    assert set(users) == {ROOT, ADA}
    assert all(set(u) == USER_KEYS for u in users.values())
    assert (users[ROOT]["roles"], users[ADA]["roles"]) == (["admin"], [])

    # A pipe gets a header and one tab-separated line per user, nothing cut or wrapped.
    lines = _ok(table).splitlines()
    header = ["id", "email", "status", "email_verified", "roles", "created_at"]
    assert lines[0].split("\t") == header
    rows = [line.split("\t") for line in lines[1:]]
    assert sorted((r[0], r[1], r[4]) for r in rows) == sorted(
        [(users[ROOT]["id"], ROOT, "admin"), (users[ADA]["id"], ADA, "-")]
    )
    assert "2 of 2 users" in table.stderr  # the count is a remark, not data

    signing = json.loads(_ok(keys_json))
    assert all(set(k) == KEY_KEYS for k in signing)
    assert sorted(k["status"] for k in signing) == ["active", "next", "retired"]
    key_lines = _ok(keys).splitlines()
    assert key_lines[0].startswith("kid\talgorithm\tstatus")
    for key in signing:
        assert any(line.startswith(key["kid"] + "\t") for line in key_lines), key["kid"]
        assert len(key["kid"]) == 43

    _one_line_error(wrong, "--format must be table or json")
    assert wrong.returncode == 2
