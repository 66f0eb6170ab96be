"""A webhook receiver as a customer would write one: a real HTTP server on loopback that
verifies each message with the reference Standard Webhooks implementation (the
``standardwebhooks`` package), processes each webhook-id once, and can go down (its port
refuses connections) and come back on the same port."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.loopback import QuietHandler, reply


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Message:
    webhook_id: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """``secrets``: the signing secrets it accepts (a message must verify with each one
    listed in ``must_verify_with``). ``crash_after_processing``: that many messages are
    processed and then answered 500, as a receiver that fell over before answering."""

    secrets: list[str] = field(default_factory=list)
    must_verify_with: list[str] = field(default_factory=list)
    crash_after_processing: int = 0
    # Misbehaviours: answer every request with a redirect there, or only after a delay.
    redirect_to: str | None = None
    delay_seconds: float = 0.0
    # (certificate, key) PEM files: serve https under the certificate's name.
    tls: tuple[Path, Path] | None = None
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    received: list[Message] = field(default_factory=list)  # every request that verified
    processed: list[Message] = field(default_factory=list)  # once per webhook-id
    rejected: list[str] = field(default_factory=list)  # why a request failed verification
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}/hooks"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if self.redirect_to is not None:
            handler.send_response(307)
            handler.send_header("Location", self.redirect_to)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        try:
            for secret in self.must_verify_with or self.secrets[:1]:
                Webhook(secret).verify(body, headers)
        except WebhookVerificationError as exc:
            self.rejected.append(str(exc))
            reply(handler, 401, b"{}", "application/json")
            return
        message = Message(handler.headers["webhook-id"], headers, body)
        with self._lock:
            self.received.append(message)
            seen = any(m.webhook_id == message.webhook_id for m in self.processed)
            if not seen:
                self.processed.append(message)
                if self.crash_after_processing > 0:
                    self.crash_after_processing -= 1
                    reply(handler, 500, b"{}", "application/json")
                    return
        reply(handler, 204 if seen else 200, b"", "application/json")

    def up(self) -> WebhookReceiver:
        receiver = self

        class Handler(QuietHandler):
            # A client that stalls (mid-handshake or mid-request) cannot keep ``down`` from
            # returning: its thread gives up after this many seconds.
            timeout = 10

            def do_POST(self) -> None:
                receiver._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.tls)
            # The handshake happens in the request's own thread, at its first read: done in
            # accept() (the default), a client that connects and never finishes it would
            # hold the serving loop, and ``down`` would wait for it forever.
            self._server.socket = context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __enter__(self) -> WebhookReceiver:
        return self.up()

    def __exit__(self, *_exc: object) -> None:
        self.down()

    def down(self) -> None:
        """Stop: the port refuses connections until ``up``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
