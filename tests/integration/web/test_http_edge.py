"""The HTTP edge of a real `auth-service serve`, over raw sockets: what uvicorn's parser
refuses, HEAD framing, the slash redirect and streamed bodies, byte for byte on the wire.

No database is involved in these answers (they are given before any route runs), so one
SQLite-backed server serves the module.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import Server, base_env, migrate

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("http-edge")
    env = base_env(tmp, f"sqlite+aiosqlite:///{tmp / 'auth.db'}")
    migrate(tmp, env)
    with Server(tmp, env) as running:
        yield running


class Reply:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split(" ")[1])
        self.headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def problem(self, status: int, slug: str) -> dict[str, Any]:
        assert self.status == status, (self.status, self.headers, self.body)
        assert self.headers["content-type"] == PROBLEM, self.headers
        assert int(self.headers["content-length"]) == len(self.body)
        body: dict[str, Any] = json.loads(self.body)
        assert body["type"] == f"https://auth-service.dev/problems/{slug}", body
        assert body["status"] == status
        assert self.headers["cache-control"] == "no-store"
        assert self.headers["x-content-type-options"] == "nosniff"
        return body


def exchange(server: Server, raw: bytes) -> Reply:
    """Send ``raw`` and read until the server closes (every request here says close)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return Reply(b"".join(chunks))


def request(*lines: str, body: bytes = b"") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


LOGIN = b'{"email": "a@example.com", "password": "x"}'


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        (
            "non-numeric content-length",
            request(
                "POST /v1/auth/login HTTP/1.1",
                "Host: localhost",
                "Content-Type: application/json",
                "Content-Length: abc",
                "Connection: close",
                body=LOGIN,
            ),
        ),
        (
            "content-length with transfer-encoding",
            request(
                "POST /v1/auth/login HTTP/1.1",
                "Host: localhost",
                "Content-Type: application/json",
                f"Content-Length: {len(LOGIN)}",
                "Transfer-Encoding: chunked",
                "Connection: close",
                body=f"{len(LOGIN):x}\r\n".encode() + LOGIN + b"\r\n0\r\n\r\n",
            ),
        ),
        (
            "nul in a header value",
            request("GET /v1/users/me HTTP/1.1", "Host: localhost", "User-Agent: a\x00b"),
        ),
        ("broken request line", request("GET /v1/users/me HTTP/9.x", "Host: localhost")),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_requests_the_parser_refuses_are_problem_json(
    server: Server, name: str, raw: bytes
) -> None:
    reply = exchange(server, raw)
    body = reply.problem(400, "malformed-request")
    assert body["detail"] == "the HTTP request could not be parsed", name
    assert reply.headers["connection"] == "close"


def test_trailing_slash_is_a_404_problem_not_a_redirect_to_the_host_header(
    server: Server,
) -> None:
    for path in ("/v1/users/me/", "/.well-known/jwks.json/", "/docs/"):
        reply = exchange(
            server, request(f"GET {path} HTTP/1.1", "Host: evil.example", "Connection: close")
        )
        reply.problem(404, "not-found")
        assert "location" not in reply.headers, path


def test_head_is_get_without_the_body_on_the_wire(server: Server) -> None:
    for path, status in (
        ("/.well-known/jwks.json", 200),
        ("/openapi.json", 200),
        ("/v1/users/me", 401),
    ):
        get = httpx.get(server.url + path, timeout=10)
        assert get.status_code == status, get.text
        reply = exchange(
            server, request(f"HEAD {path} HTTP/1.1", "Host: localhost", "Connection: close")
        )
        assert reply.status == status, path
        assert reply.body == b"", path
        assert reply.headers["content-type"] == get.headers["content-type"], path
        assert int(reply.headers["content-length"]) == len(get.content), path
    # HEAD where GET is not allowed stays a 405.
    reply = exchange(
        server, request("HEAD /v1/auth/login HTTP/1.1", "Host: localhost", "Connection: close")
    )
    assert reply.status == 405
    assert reply.body == b""


def test_streamed_body_over_the_limit_is_a_413_problem_with_the_limit(server: Server) -> None:
    limit = 1048576  # server.max_body_bytes, the default

    def chunks() -> Iterator[bytes]:
        yield b'{"email": "a@example.com", "password": "'
        for _ in range(limit // 65536 + 2):
            yield b"p" * 65536
        yield b'"}'

    r = httpx.post(
        server.url + "/v1/auth/login",
        content=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["detail"] == f"limit is {limit} bytes"


def test_a_websocket_upgrade_gets_a_problem(server: Server) -> None:
    reply = exchange(
        server,
        request(
            "GET /v1/users/me HTTP/1.1",
            "Host: localhost",
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        ),
    )
    assert reply.problem(404, "not-found")["detail"] == "no WebSocket endpoint here"


def test_the_server_logs_no_traceback(server: Server) -> None:
    assert "Traceback" not in server.logs()
