"""A real `auth-service serve` subprocess on free loopback ports, for black-box tests.

Used by the multi-worker metrics, log-secret, tracing, reload, shutdown and end-to-end
alerting tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.support.net import free_port, wait_ready
from tests.support.services import asyncpg_dsn, fresh_postgres_database
from tests.support.settings import TEST_MASTER_KEY

CLI = str(Path(sys.executable).with_name("auth-service"))


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped afterwards); yields its base DSN."""
    with fresh_postgres_database("auth_obs_") as url:
        yield asyncpg_dsn(url)


def base_env(tmp: Path, database_url: str, **extra: str) -> dict[str, str]:
    """Environment of a test server: cheap argon2, generous limits, JSON logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "OTEL_"))}
    env.update(
        {
            "AUTH_ENV": "development",
            "AUTH_DATA_DIR": str(tmp / "data"),
            "AUTH_MASTER_KEY": TEST_MASTER_KEY,
            "AUTH_DATABASE__URL": database_url,
            "AUTH_PASSWORDS__ARGON2_MEMORY_COST_KIB": "1024",
            "AUTH_PASSWORDS__ARGON2_TIME_COST": "1",
            "AUTH_LOGGING__FORMAT": "json",
            "AUTH_LOGGING__LEVEL": "DEBUG",
            "AUTH_MAIL__MAX_ATTEMPTS": "2",
            # As make_settings: no scheduled housekeeping run beside a test's own.
            "AUTH_HOUSEKEEPING__ENABLED": "false",
            "AUTH_MAIL__RETRY_BASE_SECONDS": "0.05",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name in (
        "login_per_ip",
        "login_per_account",
        "register_per_ip",
        "forgot_per_ip",
        "forgot_per_account",
        "reset_per_ip",
        "refresh_per_ip",
        "verify_per_ip",
    ):
        env[f"AUTH_RATE_LIMITS__{name.upper()}"] = "10000/minute"
    env.update(extra)
    return env


def migrate(tmp: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        [CLI, "migrate"], cwd=tmp, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


class Server:
    """`auth-service serve` with its stdout (the logs) captured to a file."""

    def __init__(
        self, tmp: Path, env: dict[str, str], workers: int = 1, ca_file: Path | None = None
    ) -> None:
        """``ca_file``: the server speaks HTTPS (env sets AUTH_SERVER__TLS__*) and the
        helpers trust this CA."""
        self.tmp = tmp
        self.ca_file = ca_file
        self.scheme = "https" if ca_file else "http"
        self.port = free_port()
        self.management_port = free_port()
        self.env = {
            **env,
            "AUTH_SERVER__PORT": str(self.port),
            "AUTH_SERVER__MANAGEMENT_PORT": str(self.management_port),
            "AUTH_SERVER__GRACEFUL_SHUTDOWN_SECONDS": "2",
        }
        self.workers = workers
        self.log_path = tmp / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def management_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.management_port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What an httpx client passes as ``verify=`` to trust this server."""
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True

    def start(self, ready_timeout: float = 60.0) -> Server:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [CLI, "serve", "--workers", str(self.workers)],
                cwd=self.tmp,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ready = wait_ready(
            self.process,
            f"{self.management_url}/health/ready",
            ready_timeout,
            also=self._all_workers_up,
            verify=self.verify,
        )
        if not ready:
            self.stop()
            raise AssertionError(f"server not ready in {ready_timeout}s:\n{self.logs()[-4000:]}")
        return self

    def _all_workers_up(self) -> bool:
        return self.logs().count('"event": "started"') >= self.workers

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_exc: Any) -> None:
        self.stop()


def scrape(server: Server) -> str:
    r = httpx.get(f"{server.management_url}/metrics", timeout=10)
    r.raise_for_status()
    return r.text


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in an exposition (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0
