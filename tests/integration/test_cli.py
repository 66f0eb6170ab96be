"""The real `auth-service` console script, as an operator runs it, on SQLite and PostgreSQL.

Every failure must be one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.cli import SCRIPT, cli_environment, one_line_error, run_cli
from tests.support.net import free_port
from tests.support.services import BOTH_DATABASES, fresh_postgres_database

PASSWORD = "Tr0ub4dor&3-horse"


def _cli_many(
    calls: list[tuple[list[str], dict[str, str], str | None]], cwd: Path
) -> list[subprocess.CompletedProcess[str]]:
    """Independent invocations side by side: each one pays the full interpreter start-up."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run_cli, args, env, cwd, stdin) for args, env, stdin in calls]
        return [f.result() for f in futures]


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database (not migrated: `migrate` is what is under test)."""
    with fresh_postgres_database("auth_cli_") as url:
        yield url


@pytest.fixture(params=BOTH_DATABASES)
def cli_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    env = cli_environment(tmp_path / "data")
    if request.param == "postgresql":
        env["AUTH_DATABASE__URL"] = request.getfixturevalue("fresh_postgres_url")
    return env


def test_operator_workflow(cli_env: dict[str, str], tmp_path: Path) -> None:
    first = run_cli(["migrate"], cli_env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "migrated" in first.stdout
    again = run_cli(["migrate"], cli_env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already at" in again.stdout

    create = ["users", "create", "--email", "Root@Example.com", "--admin", "--password-stdin"]
    made = run_cli(create, cli_env, tmp_path, stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    assert "created root@example.com" in made.stdout
    assert "admin" in made.stdout
    assert PASSWORD not in made.stdout + made.stderr

    weak = ["users", "create", "--email", "weak@example.com", "--password-stdin"]
    duplicate, refused, listed, rotated = _cli_many(
        [
            (create, cli_env, PASSWORD + "\n"),
            (weak, cli_env, "password\n"),
            (["users", "list"], cli_env, None),
            (["keys", "rotate"], cli_env, None),
        ],
        tmp_path,
    )
    one_line_error(duplicate, "already exists")
    one_line_error(refused, "password refused", "too common")
    assert listed.returncode == 0, listed.stderr
    assert "root@example.com" in listed.stdout
    assert "weak@example.com" not in listed.stdout
    assert rotated.returncode == 0, rotated.stderr
    kid = rotated.stdout.strip().rsplit(" ", 1)[-1]
    keys = run_cli(["keys", "list"], cli_env, tmp_path)
    assert keys.returncode == 0, keys.stderr
    row = next(line for line in keys.stdout.splitlines() if kid in line)
    assert "active" in row
    assert "next" in keys.stdout
    assert "retired" in keys.stdout  # the key ensure_keys made active before the rotation


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    env = cli_environment(tmp_path / "data")
    master = secrets.token_urlsafe(32)
    db_password = "Pg-" + secrets.token_hex(8)
    bad_yaml = tmp_path / "broken.yaml"
    bad_yaml.write_text("server:\n  port: [8000\n")
    secret_env = {
        **env,
        "AUTH_MASTER_KEY": master,
        "AUTH_DATABASE__URL": f"postgresql+asyncpg://auth:{db_password}@127.0.0.1:1/auth",
    }
    shown, unknown, broken, unreachable = _cli_many(
        [
            (["config", "show"], secret_env, None),
            (["config", "show"], {**env, "AUTH_DATABASE__URLL": "x"}, None),
            (["--config", str(bad_yaml), "config", "show"], env, None),
            (["users", "list"], secret_env, None),
        ],
        tmp_path,
    )
    assert shown.returncode == 0, shown.stderr
    assert "********" in shown.stdout
    for secret in (master, db_password):
        assert secret not in shown.stdout + shown.stderr

    assert unknown.returncode == 2
    one_line_error(unknown, "AUTH_DATABASE__URLL")

    assert broken.returncode == 2
    one_line_error(broken, "broken.yaml")

    line = one_line_error(unreachable, "database")
    for secret in (master, db_password):
        assert secret not in unreachable.stderr + unreachable.stdout
    assert "127.0.0.1" in line


def test_production_refuses_unsafe_settings_before_binding(tmp_path: Path) -> None:
    base = {
        **cli_environment(tmp_path / "data"),
        "AUTH_ENV": "production",
        "AUTH_SERVER__PUBLIC_URL": "https://auth.example.com",
    }
    master = secrets.token_urlsafe(32)
    cases = [
        ({}, "master key"),
        ({"AUTH_MASTER_KEY": master, "AUTH_DEBUG": "true"}, "debug"),
        (
            {"AUTH_MASTER_KEY": master, "AUTH_SERVER__PUBLIC_URL": "http://auth.example.com"},
            "http://",
        ),
    ]
    # Hold the port: a server that tried to bind first would complain about it instead.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        args = ["serve", "--port", str(held.getsockname()[1]), "--management-port", "0"]
        results = _cli_many([(args, {**base, **extra}, None) for extra, _ in cases], tmp_path)
    for (_, reason), result in zip(cases, results, strict=True):
        line = one_line_error(result, reason, "production")
        assert "cannot listen" not in line
        assert master not in result.stderr


@contextlib.contextmanager
def _serving(args: list[str], env: dict[str, str], cwd: Path, management: int) -> Iterator[None]:
    """`auth-service ... serve ...` until its management port is ready; on leaving, SIGTERM and
    a check that it stopped cleanly."""
    process = subprocess.Popen(
        [str(SCRIPT), *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{management}/health/ready", timeout=1)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert process.poll() is None, process.communicate(timeout=5)
        assert ready is not None
        assert ready.status_code == 200, ready.text
        yield
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            out, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            pytest.fail(f"serve did not stop within 15 s of SIGTERM: {err}")
    # uvicorn (>= 0.29) re-raises the SIGTERM it handled once the graceful shutdown is done,
    # so a clean stop is exit 0 or death by that same signal (143 to a shell, normal to K8s).
    assert process.returncode in (0, -signal.SIGTERM), err
    assert "error" not in err.lower(), err
    assert "Traceback" not in err + out
    assert PASSWORD not in err + out


def test_serve_answers_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = cli_environment(tmp_path / "data")
    assert run_cli(["migrate"], env, tmp_path).returncode == 0
    port, management = free_port(), free_port()
    args = ["serve", "--port", str(port), "--management-port", str(management), "--workers", "1"]
    with _serving(args, env, tmp_path, management):
        jwks = httpx.get(f"http://127.0.0.1:{port}/.well-known/jwks.json", timeout=5)
        assert jwks.status_code == 200
        assert jwks.json()["keys"]
        register = httpx.post(
            f"http://127.0.0.1:{port}/v1/auth/register",
            json={"email": "served@example.com", "password": PASSWORD},
            timeout=10,
        )
        assert register.status_code == 202, register.text
        # The management port is not the public API.
        elsewhere = httpx.get(f"http://127.0.0.1:{management}/v1/users/me", timeout=5)
        assert elsewhere.status_code == 404


def test_serve_flags_reach_every_worker_and_outlast_a_reload(tmp_path: Path) -> None:
    """--port and friends win over the config file in each worker, and a reload (which reads
    the file again) neither loses them nor calls them restart-required."""
    env = cli_environment(tmp_path / "data")
    config = tmp_path / "auth.yaml"
    config.write_text("server:\n  port: 8123\n  management_port: 9123\n  workers: 1\n")
    assert run_cli(["--config", str(config), "migrate"], env, tmp_path).returncode == 0
    port, management = free_port(), free_port()
    flags = ["--port", str(port), "--management-port", str(management), "--workers", "2"]
    with _serving(["--config", str(config), "serve", *flags], env, tmp_path, management):
        jwks = httpx.get(f"http://127.0.0.1:{port}/.well-known/jwks.json", timeout=5)
        assert jwks.status_code == 200
        # Several requests, so that both workers are likely to answer one.
        for _ in range(4):
            reload = httpx.post(f"http://127.0.0.1:{management}/config/reload", timeout=10)
            assert reload.status_code == 200, reload.text
            assert reload.json()["result"] == "unchanged"
            assert reload.json()["restart_required"] == []
