"""The programs under examples/, each started by the one command its README gives, against a
live auth-service (tests/support/live_server.py)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.daemon import Daemon
from tests.support.live_server import LiveServer
from tests.support.net import free_port
from tests.support.secrets import remember

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PYTHON = sys.executable


def create_client(live: LiveServer, cwd: Path, *options: str) -> dict[str, str]:
    """`auth-service clients create ... --format json` on the live server's database."""
    done = run_cli(["clients", "create", *options, "--format", "json"], live.server.env, cwd)
    assert done.returncode == 0, done.stderr
    created: dict[str, str] = json.loads(done.stdout)
    if created.get("client_secret"):
        remember(created["client_secret"])
    return created


@contextlib.contextmanager
def run_example(
    name: str, args: list[str], tmp: Path, port: int, ready_path: str = "/", host: str = "127.0.0.1"
) -> Iterator[str]:
    """Start ``examples/<name>`` with ``.venv/bin/python examples/<name>/<script> args``;
    yields its base URL once ``ready_path`` answers 200."""
    daemon = Daemon(
        name,
        [PYTHON, *args],
        tmp / f"{name}-{port}.log",
        f"http://127.0.0.1:{port}{ready_path}",
    ).start()
    try:
        yield f"http://{host}:{port}"
    finally:
        daemon.stop()


__all__ = ["EXAMPLES", "create_client", "free_port", "run_example"]
