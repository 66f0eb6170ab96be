"""The real `auth-service` console script managing existing accounts and listing things, on
SQLite and PostgreSQL.

List commands print every id and email whole when stdout is a pipe (rich would cut them at
80 columns) and a JSON array with stable keys under `--format json`. `users disable`,
`enable`, `promote`, `demote` and `reset` change an existing account through the accounts
use cases, audited; a refusal is one line on stderr and a non-zero exit saying what to do.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from auth_service.accounts.schemas import AdminUserOut
from tests.support.api import running_api
from tests.support.cli import cli_environment, one_line_error, run_cli
from tests.support.mail import decode_mail, mail_token
from tests.support.services import BOTH_DATABASES, fresh_postgres_database
from tests.support.settings import PASSWORD, TEST_MASTER_KEY, make_settings

# Longer than rich's 80 columns on its own: any cut or wrap would show.
ROOT = "root.administrator.of.this.installation@operations.subdomain.example.com"
ADA = "ada.lovelace.analytical.engine@mathematics.department.example.org"
# The items of GET /v1/admin/users, the same keys.
USER_KEYS = set(AdminUserOut.model_fields)
KEY_KEYS = {"kid", "algorithm", "status", "created_at", "activated_at", "publish_until"}


@pytest.fixture(params=BOTH_DATABASES)
def cli_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of an operator's shell: no COLUMNS (a pipe is 80 columns to rich), the
    suite's master key (so the in-process app can read what the CLI wrote)."""
    env = cli_environment(tmp_path / "data")
    del env["COLUMNS"]
    env.update(
        AUTH_MASTER_KEY=TEST_MASTER_KEY,
        AUTH_PASSWORDS__ARGON2_MEMORY_COST_KIB="1024",
        AUTH_PASSWORDS__ARGON2_TIME_COST="1",
    )
    if request.param == "postgresql":
        with fresh_postgres_database("auth_cli_") as url:
            yield {**env, "AUTH_DATABASE__URL": url}
        return
    yield env


def _cli(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli(list(args), env, Path(env["AUTH_DATA_DIR"]).parent, stdin)


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
    # Each signing algorithm (access tokens, and ID tokens per client) rotates on its own.
    by_algorithm: dict[str, list[str]] = {}
    for key in signing:
        by_algorithm.setdefault(key["algorithm"], []).append(key["status"])
    assert "RS256" in by_algorithm
    assert all(sorted(s) == ["active", "next", "retired"] for s in by_algorithm.values())
    key_lines = _ok(keys).splitlines()
    assert key_lines[0].startswith("kid\talgorithm\tstatus")
    for key in signing:
        assert any(line.startswith(key["kid"] + "\t") for line in key_lines), key["kid"]
        assert len(key["kid"]) == 43

    one_line_error(wrong, "--format must be table or json")
    assert wrong.returncode == 2


async def test_manage_existing_accounts(cli_env: dict[str, str], tmp_path: Path) -> None:
    _setup(cli_env)
    # The last administrator is never demoted or disabled; an unknown email says so.
    chosen = "An0ther-long-passphrase"
    last, also_last, unknown, weak = _many(
        cli_env,
        _call("users", "demote", "--email", ROOT),
        _call("users", "disable", "--email", ROOT.upper()),
        _call("users", "enable", "--email", "nobody@example.com"),
        _call("users", "reset", "--email", ADA, "--password-stdin", stdin="short\n"),
    )
    one_line_error(last, "last active administrator", "users promote")
    one_line_error(also_last, "last active administrator")
    one_line_error(unknown, "no account with email 'nobody@example.com'", "users list")
    one_line_error(weak, "password refused")

    promoted = _cli(cli_env, "users", "promote", "--email", ADA)
    assert _ok(promoted).strip() == f"{ADA} is now an administrator"
    [event] = _audit(promoted)
    assert (event["event"], event["roles"]) == ("admin.user_updated", ["admin"])

    again, disabled, direct = _many(
        cli_env,
        _call("users", "promote", "--email", ADA),
        _call("users", "disable", "--email", ROOT),
        _call("users", "reset", "--email", ADA, "--password-stdin", stdin=chosen + "\n"),
    )
    assert _ok(again).strip() == f"{ADA} is already an administrator"
    assert _audit(again) == []
    assert _ok(disabled).strip() == f"disabled {ROOT}; every session of it has ended"
    assert [e["status"] for e in _audit(disabled)] == ["disabled"]
    assert "every session of it ended" in _ok(direct)
    assert [e["event"] for e in _audit(direct)] == ["admin.password_set"]
    assert chosen not in direct.stdout + direct.stderr
    refused = _cli(cli_env, "users", "reset", "--email", ROOT)
    one_line_error(refused, "is disabled and gets no reset link", "users enable")

    assert _ok(_cli(cli_env, "users", "enable", "--email", ROOT)).strip() == f"enabled {ROOT}"
    demoted, mailed = _many(
        cli_env, _call("users", "demote", "--email", ROOT), _call("users", "reset", "--email", ROOT)
    )
    assert _ok(demoted).strip() == f"{ROOT} is no longer an administrator"
    # reset without --password-stdin: the forgot-password mail, with its link.
    assert re.match(rf"reset link mailed to {re.escape(ROOT)}; it works once", _ok(mailed))
    assert [e["event"] for e in _audit(mailed)] == ["admin.password_reset_sent"]
    listed = json.loads(_ok(_cli(cli_env, "users", "list", "--format", "json")))
    users = {u["email"]: u for u in listed}
    assert (users[ROOT]["status"], users[ROOT]["roles"]) == ("active", [])
    assert (users[ADA]["status"], users[ADA]["roles"]) == ("active", ["admin"])

    # What the commands did, seen through the API on the same database.
    outbox = Path(cli_env["AUTH_DATA_DIR"]) / "outbox"
    mails = [decode_mail(p.read_bytes()) for p in sorted(outbox.glob("*.eml"))]
    token = mail_token([m for m in mails if ROOT in m], "/reset-password")
    url = cli_env.get("AUTH_DATABASE__URL") or f"sqlite+aiosqlite:///{outbox.parent}/auth.db"
    async with running_api(make_settings(tmp_path / "api", url)) as api:
        body = {"token": token, "new_password": "Chosen-by-the-link-1"}
        reset = await api.client.post("/v1/auth/password/reset", json=body)
        assert reset.status_code == 204, reset.text
        assert (await api.login(ROOT, "Chosen-by-the-link-1")).status_code == 200
        assert (await api.login(ADA, chosen)).status_code == 200
        assert (await api.login(ADA, PASSWORD)).status_code == 401
