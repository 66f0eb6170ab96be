"""Talking to an upstream provider that is down, slow or not speaking the protocol: always
UpstreamUnavailable, within the timeout (real sockets, no fakes)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from auth_service.federation.errors import InvalidConnector, UpstreamUnavailable
from auth_service.federation.upstream import Upstream

QUICK = httpx.Timeout(0.5, connect=0.5)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A server that accepts connections and never answers (an upstream hanging)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


class _NotProtocol(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 503 if "fail" in self.path else 200
        body = b"<html>maintenance</html>"
        kind = "text/html"
        if self.path.startswith("/common/v2.0/.well-known/"):  # Entra's multi-tenant shape
            base = f"http://{self.headers['Host']}"
            body = json.dumps(
                {
                    "issuer": base + "/{tenantid}/v2.0",
                    "authorization_endpoint": base + "/authorize",
                    "token_endpoint": base + "/token",
                    "jwks_uri": base + "/keys",
                }
            ).encode()
            kind = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def html_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotProtocol)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_a_slow_upstream_times_out(silent_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable):
        await Upstream(QUICK).metadata(f"http://127.0.0.1:{silent_port}")
    assert time.monotonic() - started < 5


async def test_a_closed_port_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UpstreamUnavailable):
        await Upstream(QUICK).metadata(f"http://127.0.0.1:{port}")


@pytest.mark.parametrize("path", ["", "/fail"])
async def test_html_or_a_5xx_is_unavailable(html_server: str, path: str) -> None:
    with pytest.raises(UpstreamUnavailable):
        await Upstream(QUICK).metadata(html_server + path)


async def test_only_entra_may_name_the_tenant_template_as_issuer(html_server: str) -> None:
    issuer = html_server + "/common/v2.0"
    with pytest.raises(InvalidConnector):
        await Upstream(QUICK).metadata(issuer)  # a generic provider must name itself
    found = await Upstream(QUICK).metadata(issuer, tenant_template=True)
    assert found.issuer == html_server + "/{tenantid}/v2.0"
    assert found.algorithms == ("RS256",)  # the Discovery default when none are listed
