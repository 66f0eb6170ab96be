"""A real `auth-service serve` on free ports, a fresh PostgreSQL database, Redis, and real SMTP.

For journeys through the browser and the Node harness. The server is the CLI in a subprocess
(the helpers of tests/support/server.py), ready once the management port's
``/health/ready`` answers; its mail goes over SMTP to an aiosmtpd server run here.

    user = live_server.new_user()  # register + log in over the JSON API
    link = live_server.mailbox.next_mail(user["email"]).link("/verify-email")
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from redis import Redis

from tests.support.net import free_port
from tests.support.server import Server, base_env, migrate, postgres_database
from tests.support.services import REDIS_TEST_DB, REDIS_URL, service_missing, sqlalchemy_url

PASSWORD = "Tr0ub4dor&3-horse"
# An API scope of the server's (``oauth.scopes``), for clients of their own (client_credentials).
API_SCOPE = "reports:read"
_URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class Mail:
    to: list[str]
    subject: str
    text: str
    message: EmailMessage = field(repr=False)

    @property
    def links(self) -> list[str]:
        return _URL.findall(self.text)

    def link(self, path: str) -> str:
        """The first link whose path starts with ``path`` (``/verify-email``...)."""
        for url in self.links:
            if httpx.URL(url).path.startswith(path):
                return url
        raise AssertionError(f"no {path} link in mail {self.subject!r}:\n{self.text}")


class Mailbox:
    """An SMTP server on loopback that keeps every message, and waits for the next one."""

    def __init__(self) -> None:
        self.port = free_port()
        self._mails: list[Mail] = []
        self._read: dict[str, int] = {}  # address -> how many of its mails were returned
        self._arrived = threading.Condition()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(preferencelist=("plain",))
        mail = Mail(
            to=[a.lower() for a in envelope.rcpt_tos],
            subject=str(message["Subject"]),
            text=body.get_content() if body is not None else "",
            message=message,
        )
        with self._arrived:
            self._mails.append(mail)
            self._arrived.notify_all()
        return "250 OK"

    def next_mail(self, to: str, timeout: float = 10.0) -> Mail:
        """The next mail to ``to`` not returned before; waits for it to arrive."""
        to = to.lower()
        with self._arrived:
            mine: list[Mail] = []

            def arrived() -> bool:
                mine[:] = [m for m in self._mails if to in m.to]
                return len(mine) > self._read.get(to, 0)

            if not self._arrived.wait_for(arrived, timeout):
                raise AssertionError(f"no new mail to {to} within {timeout}s")
            mail = mine[self._read.get(to, 0)]
            self._read[to] = self._read.get(to, 0) + 1
            return mail

    def __enter__(self) -> Mailbox:
        self._controller.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._controller.stop()


@dataclass
class LiveServer:
    server: Server
    mailbox: Mailbox
    database_url: str

    @property
    def url(self) -> str:
        return self.server.env["AUTH_SERVER__PUBLIC_URL"]

    @property
    def management_url(self) -> str:
        return self.server.management_url

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def new_user(self, email: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
        """Register and log in a fresh user over the JSON API.

        The login body (``access_token``, ``refresh_token``, ``session_id``...) plus ``user``
        (``GET /v1/users/me``: registration answers 202 without a body), ``email`` and
        ``password``.
        """
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        credentials = {"email": email, "password": password}
        with self.client() as http:
            registered = http.post("/v1/auth/register", json=credentials)
            assert registered.status_code == 202, registered.text
            login = http.post("/v1/auth/login", json=credentials)
            assert login.status_code == 200, login.text
            bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
            me = http.get("/v1/users/me", headers=bearer)
            assert me.status_code == 200, me.text
        return {**login.json(), "user": me.json(), **credentials}


def _redis_url() -> str:
    """The suite's own Redis database (AUTH_TEST_REDIS_DB), emptied for the new server."""
    url = REDIS_URL.rsplit("/", 1)[0] + f"/{REDIS_TEST_DB}"
    try:
        with Redis.from_url(url, socket_connect_timeout=2) as client:
            client.flushdb()
    except Exception as exc:
        service_missing("Redis", f"{url}: {exc}")
    return url


@contextlib.contextmanager
def run_live_server(
    tmp: Path,
    *,
    public_host: str = "127.0.0.1",
    redis: bool = True,
    workers: int = 1,
    **env: str,
) -> Iterator[LiveServer]:
    """Serve on PostgreSQL (fresh database), Redis and SMTP; ``env`` overrides AUTH_* settings.

    ``public_host="localhost"`` for WebAuthn (an IP address is no valid RP ID).
    """
    with postgres_database() as dsn, Mailbox() as mailbox:
        settings = {
            "AUTH_MAIL__BACKEND": "smtp",
            "AUTH_MAIL__SMTP_HOST": "127.0.0.1",
            "AUTH_MAIL__SMTP_PORT": str(mailbox.port),
            "AUTH_MAIL__SMTP_STARTTLS": "false",
            "AUTH_MAIL__FROM_ADDRESS": "auth-service <no-reply@example.com>",
            "AUTH_OAUTH__SCOPES": json.dumps({API_SCOPE: "Read your reports"}),
            # Outbound POSTs (webhooks, back-channel logout) to the tests' loopback receivers.
            "AUTH_WEBHOOKS__ALLOW_HTTP": "true",
            "AUTH_WEBHOOKS__ALLOWED_NETWORKS": json.dumps(["127.0.0.1/32"]),
        }
        if redis:
            settings["AUTH_REDIS__URL"] = _redis_url()
        server_env = base_env(tmp, sqlalchemy_url(dsn), **{**settings, **env})
        migrate(tmp, server_env)
        server = Server(tmp, server_env, workers=workers)
        server.env.setdefault("AUTH_SERVER__PUBLIC_URL", f"http://{public_host}:{server.port}")
        with server:
            yield LiveServer(server=server, mailbox=mailbox, database_url=dsn)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the session's journeys: each test makes its own users."""
    with run_live_server(tmp_path_factory.mktemp("live-server")) as server:
        yield server
