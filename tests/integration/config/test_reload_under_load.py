"""Hot reload of a running multi-worker server under steady load.

The rate limit and log level change in the config file and apply in every worker with zero
failed requests; a broken file changes nothing; SIGHUP reloads in place instead of
restarting the workers."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.load import Load
from tests.support.server import Server, base_env, migrate, sample, scrape
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

WORKERS = 2


def config(login_per_ip: str, level: str) -> str:
    return yaml.safe_dump(
        {
            "rate_limits": {
                "storage": "redis",
                "login_per_ip": login_per_ip,
                "login_per_account": "10000/minute",
            },
            "logging": {"level": level, "format": "json"},
        }
    )


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def reloads(server: Server, result: str) -> float:
    return sample(scrape(server), "auth_config_reloads_total", result=result)


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    wait_for(predicate, 30, what, interval=0.1)


def worker_pids(server: Server) -> set[str]:
    return set(re.findall(r"Started server process \[(\d+)\]", server.logs()))


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[Server]:
    database = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    env = base_env(tmp_path, database)
    # The file, not the environment, must own the settings this test changes.
    for var in ("AUTH_RATE_LIMITS__LOGIN_PER_IP", "AUTH_RATE_LIMITS__LOGIN_PER_ACCOUNT"):
        env.pop(var)
    env.pop("AUTH_LOGGING__LEVEL")
    env.pop("AUTH_LOGGING__FORMAT")
    path = tmp_path / "conf" / "auth.yaml"
    path.parent.mkdir()
    path.write_text(config("10000/minute", "INFO"))
    env.update({"AUTH_CONFIG": str(path), "AUTH_REDIS__URL": redis_url})
    migrate(tmp_path, env)
    with Server(tmp_path, env, workers=WORKERS) as running:
        yield running


def failed_logins(server: Server, count: int) -> list[int]:
    """Wrong passwords for distinct unknown accounts: only the per-IP limit can refuse them."""
    codes = []
    with httpx.Client(timeout=30) as client:
        for _ in range(count):
            body = {"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "wrong-pw-1"}
            codes.append(client.post(f"{server.url}/v1/auth/login", json=body).status_code)
    return codes


def test_reload_under_load(server: Server) -> None:
    path = Path(server.env["AUTH_CONFIG"])
    pids = worker_pids(server)
    assert len(pids) == WORKERS
    with Load(f"{server.url}/.well-known/jwks.json", clients=3) as load:
        assert failed_logins(server, 2) == [401, 401]
        wait_until(lambda: '"event": "request"' in server.logs(), what="access lines at INFO")

        # 1. A valid change: tighter rate limit, quieter logs.
        write_atomically(path, config("3/minute", "WARNING"))
        wait_until(lambda: reloads(server, "applied") >= WORKERS, what="the valid change")
        mark = len(server.logs())
        # `limits` keys a window by its rate, so the new limit counts from zero.
        assert failed_logins(server, 4) == [401, 401, 401, 429]
        # A change that needs a restart makes every worker log a warning; access lines still
        # batched would be written before it (they go out before any other line). Then the
        # absence of info lines means something, however slow the machine.
        write_atomically(path, config("3/minute", "WARNING") + "server:\n  max_body_bytes: 2048\n")
        wait_until(
            lambda: server.logs()[mark:].count("config_restart_required") >= WORKERS,
            what="the restart-required warning of every worker",
        )
        assert '"level": "info"' not in server.logs()[mark:]

        # 2. A broken file: counted, logged, and nothing changes.
        applied = reloads(server, "applied")
        write_atomically(path, config("3/minute", "WARNING") + "rate_limits:\n  typo_key: 1\n")
        wait_until(lambda: reloads(server, "error") >= WORKERS, what="the broken file")
        assert reloads(server, "applied") == applied
        assert "config_reload_failed" in server.logs()
        assert failed_logins(server, 1) == [429]

        # 3. SIGHUP reloads in place: the workers are not replaced.
        seen = reloads(server, "applied") + reloads(server, "unchanged")
        write_atomically(path, config("3/minute", "WARNING"))
        wait_until(
            lambda: reloads(server, "applied") + reloads(server, "unchanged") >= seen + WORKERS,
            what="the file watch of every worker",
        )
        before = reloads(server, "unchanged")
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGHUP)
        wait_until(lambda: reloads(server, "unchanged") >= before + WORKERS, what="SIGHUP")
        served = load.served()
        wait_until(lambda: load.served() >= served + 20, what="requests after the SIGHUP")
        load.stop()
    assert worker_pids(server) == pids
    with sqlite3.connect(server.tmp / "auth.db") as db:
        rows = db.execute(
            "SELECT details FROM audit_events WHERE type = 'config.reloaded'"
        ).fetchall()
    assert len(rows) >= WORKERS
    assert "rate_limits.login_per_ip" in rows[0][0]
    assert load.served() > 50
    assert load.failures() == {}, (load.failures(), load.errors[:5])
    assert load.outcomes["refused"] == 0


def test_reload_endpoint_reports_restart_required(server: Server) -> None:
    path = Path(server.env["AUTH_CONFIG"])
    doc = yaml.safe_load(path.read_text())
    doc.setdefault("server", {})["max_body_bytes"] = 2048
    doc["rate_limits"]["login_per_ip"] = "50/minute"
    write_atomically(path, yaml.safe_dump(doc))
    r = httpx.post(f"{server.management_url}/config/reload", timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    # Another worker (or the file watch) may have applied the change first: either way the
    # restart-required key is reported and the reloadable one is in force.
    assert body["restart_required"] == ["server.max_body_bytes"]
    assert body["result"] in ("applied", "unchanged")
    assert "server.max_body_bytes" in server.logs()
    write_atomically(path, "server: [broken\n")
    r = httpx.post(f"{server.management_url}/config/reload", timeout=30)
    assert r.status_code == 422
    assert r.json()["result"] == "error"
    assert "invalid YAML" in r.json()["error"]
