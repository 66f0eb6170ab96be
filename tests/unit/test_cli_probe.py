"""`auth-service healthcheck`: the container probe, against a real HTTP server on loopback."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from auth_service.cli.probe import check

SCRIPT = Path(sys.executable).with_name("auth-service")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health/ready" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_check_reports_healthy_unhealthy_and_usage_errors(server: str) -> None:
    assert check("ready", f"{server}/health/ready", 2)[0] == 0
    code, message = check("ready", f"{server}/health/started", 2)
    assert code == 1
    assert "HTTP 503" in message
    assert check("ready", "http://127.0.0.1:9/health/ready", 2)[0] == 1
    assert check("nope", None, 2)[0] == 2
    assert check("live", "file:///etc/passwd", 2)[0] == 2


def test_console_script_exit_codes(server: str) -> None:
    ok = subprocess.run(
        [SCRIPT, "healthcheck", "--probe", "ready", "--url", f"{server}/health/ready"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [SCRIPT, "healthcheck", "--url", f"{server}/health/down"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert bad.returncode == 1
    assert "HTTP 503" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_fast_path_does_not_import_the_service() -> None:
    """HEALTHCHECKs run this every few seconds: no SQLAlchemy, FastAPI or backup code."""
    code = (
        "import sys; sys.argv = ['auth-service', 'healthcheck', '--url', 'http://127.0.0.1:9/']\n"
        "from auth_service.cli import entry\n"
        "try:\n    entry.main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('sqlalchemy', 'fastapi', 'typer', 'auth_service.services') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.strip() == ""
