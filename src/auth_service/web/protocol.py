"""uvicorn's HTTP protocol, answering a request it cannot parse with problem+json.

A request the HTTP parser refuses (a non-numeric ``Content-Length``, ``Content-Length`` with
``Transfer-Encoding``, a control character in a header, a broken request line) never reaches
the app: uvicorn writes its own ``400 text/plain`` and closes the connection. These
subclasses write the catalogue's ``malformed-request`` problem instead, with the security
headers the app's responses carry. ``auth-service serve`` passes ``http_protocol()`` to
``uvicorn.Config(http=...)``.
"""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from auth_service.web.errors import BAD_REQUEST, PROBLEM_BASE, PROBLEM_JSON
from auth_service.web.middleware import API_SECURITY_HEADERS

DETAIL = "the HTTP request could not be parsed"


def _problem_parts() -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps(
        {
            "type": PROBLEM_BASE + BAD_REQUEST.slug,
            "title": BAD_REQUEST.title,
            "status": BAD_REQUEST.status,
            "detail": DETAIL,
        },
        separators=(",", ":"),
    ).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *API_SECURITY_HEADERS,
        # The parser's state is unknown after the error: the connection cannot be reused.
        (b"connection", b"close"),
    ]
    return headers, body


_HEADERS, _BODY = _problem_parts()


def _raw_response(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    lines = [b"HTTP/1.1 400 Bad Request"]
    lines += [name + b": " + value for name, value in [*default_headers, *_HEADERS]]
    return b"\r\n".join(lines) + b"\r\n\r\n" + _BODY


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's default protocol (httptools, which ``uvicorn[standard]`` installs)."""

    def send_400_response(self, msg: str) -> None:
        # uvicorn has logged ``msg`` as a warning already.
        self.transport.write(_raw_response(self.server_state.default_headers))
        self.transport.close()


class ProblemH11Protocol(H11Protocol):
    """The same for ``h11``, uvicorn's pure-Python protocol."""

    def send_400_response(self, msg: str) -> None:
        headers = [*self.server_state.default_headers, *_HEADERS]
        event = h11.Response(status_code=400, headers=headers, reason=b"Bad Request")
        for part in (event, h11.Data(data=_BODY), h11.EndOfMessage()):
            self.transport.write(self.conn.send(part) or b"")
        self.transport.close()


def http_protocol() -> type[asyncio.Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)``; module-level, so a config that
    uvicorn hands to spawned workers pickles by reference."""
    return ProblemHttpToolsProtocol
