"""Loopback HTTP receivers standing in for Slack, PagerDuty and webhook endpoints.

Each records what it was sent and can be told to fail, so tests see retries.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from tests.support.loopback import LoopbackServer, QuietHandler, reply
from tests.support.wait import wait_for


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    # When it arrived (time.monotonic()): tests bound how early a notice can come.
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """``status`` is answered to every request; ``fail_first`` requests get 503 first."""

    status: int = 200
    fail_first: int = 0
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    code = 503
                else:
                    receiver.requests.append(Received(self.path, dict(self.headers), body))
                    code = receiver.status
                reply(self, code, b"{}", "application/json")

        self._server = LoopbackServer(Handler)

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> Receiver:
        self._server.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        wait_for(
            lambda: len(self.requests) >= count,
            timeout,
            f"{count} requests (got {len(self.requests)})",
            interval=0.02,
        )
        return self.requests
