"""Dependency checks against real loopback servers: HTTP, TLS, SMTP (aiosmtpd), disk."""

from __future__ import annotations

import asyncio
import http.server
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from auth_service.config.sections import HttpEndpoint, TlsHost
from auth_service.config.settings import Settings
from auth_service.health.checks import (
    build_checks,
    disk_check,
    http_check,
    smtp_check,
    tls_check,
)
from auth_service.health.monitor import Status
from auth_service.observability import metrics
from auth_service.services import Services
from tests.support.smtp import Inbox
from tests.support.tls import self_signed_certificate


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/ok" else 500
        body = b'{"status": "green"}' if status == 200 else b"oops"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_http_endpoint(http_server: str) -> None:
    ok = await http_check(HttpEndpoint(name="ok", url=f"{http_server}/ok", body_pattern="green"))()
    assert ok.status is Status.up
    wrong = await http_check(HttpEndpoint(name="x", url=f"{http_server}/boom"))()
    assert wrong.status is Status.down
    assert wrong.message == "status 500, expected 200"
    body = await http_check(HttpEndpoint(name="y", url=f"{http_server}/ok", body_pattern="red"))()
    assert body.status is Status.down


async def _tls_server(cert: Path, key: Path) -> AsyncIterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    ("days", "status"), [(60, Status.up), (10, Status.degraded), (3, Status.down)]
)
async def test_tls_days_to_expiry(tmp_path: Path, days: int, status: Status) -> None:
    cert, key = self_signed_certificate(tmp_path, days)
    async for port in _tls_server(cert, key):
        target = TlsHost(
            host="localhost", port=port, ca_file=cert, warning_days=21, critical_days=7
        )
        result = await tls_check(target)()
        assert result.status is status, result.message
        assert metrics.TLS_CERT_EXPIRY.labels("localhost")._value.get() > 0


async def test_tls_untrusted_chain_is_down(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path, 60)
    other, _ = self_signed_certificate(tmp_path, 60, name="other.test")
    async for port in _tls_server(cert, key):
        result = await tls_check(TlsHost(host="localhost", port=port, ca_file=other))()
        assert result.status is Status.down
        assert result.message.startswith("certificate rejected")


async def test_tls_wrong_hostname_is_down(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path, 60, name="example.test")
    async for port in _tls_server(cert, key):
        # The certificate is trusted, but it names another host.
        result = await tls_check(TlsHost(host="127.0.0.1", port=port, ca_file=cert))()
        assert result.status is Status.down
        assert "rejected" in result.message


async def test_disk(tmp_path: Path) -> None:
    assert (await disk_check([tmp_path], 0.0, 0.0)()).status is Status.up
    assert (await disk_check([tmp_path], 100.0, 0.0)()).status is Status.degraded
    assert (await disk_check([tmp_path], 100.0, 100.0)()).status is Status.down
    missing = await disk_check([tmp_path / "nope"], 1.0, 0.5)()
    assert missing.status is Status.down


async def test_smtp_relay_answers(smtp: tuple[Inbox, int]) -> None:
    settings = Settings(
        mail={"backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": smtp[1]}  # type: ignore[arg-type]
    )
    result = await smtp_check(cast(Services, SimpleNamespace(settings=settings)))()
    assert result.status is Status.up


def test_registry_applies_tuning(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        mail={"backend": "smtp"},  # type: ignore[arg-type]
        health={  # type: ignore[arg-type]
            "interval_seconds": 7,
            "checks": {
                "disk": {"enabled": False},
                "smtp": {"critical": True, "interval_seconds": 3},
            },
            "http_endpoints": [{"name": "idp", "url": "https://idp.example.com/health"}],
            "tls_hosts": [{"host": "auth.example.com"}],
        },
    )
    services = cast(Services, SimpleNamespace(settings=settings, redis=None))
    checks = {c.name: c for c in build_checks(services, settings)}
    assert set(checks) == {
        "database",
        "smtp",
        "signing_keys",
        "http:idp",
        "tls:auth.example.com:443",
    }
    assert checks["smtp"].critical
    assert checks["smtp"].interval_seconds == 3
    assert checks["database"].interval_seconds == 7
    assert not checks["http:idp"].critical
