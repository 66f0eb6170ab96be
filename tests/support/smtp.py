"""pytest plugin: a real SMTP server (aiosmtpd) on loopback that keeps what it receives."""

from __future__ import annotations

import email
import email.policy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.support.net import free_port

# aiosmtpd logs every connection and command at INFO ("mail.log"). Its servers run in threads
# of the test process, and the live server's mail sink lasts the whole session, its service's
# readiness check saying EHLO every few seconds; while a CLI command runs in process (click's
# CliRunner captures what the command's logging writes), those lines landed in the command's
# output, and a test of a one-line error read eight lines (CI, tests/integration/backup).
logging.getLogger("mail.log").setLevel(logging.WARNING)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        # Whether each message came over TLS (STARTTLS), in order.
        self.tls: list[bool] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        self.tls.append(session.ssl is not None)
        return "250 OK"


class Refusing(Inbox):
    """Refuses every recipient with a permanent reply (RFC 5321 section 4.2.1: 5yz)."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        return "550 5.1.1 no such mailbox"


@contextmanager
def smtp_server(
    inbox: Inbox | None = None, port: int | None = None, **options: Any
) -> Iterator[tuple[Inbox, int]]:
    """aiosmtpd on ``port`` (default: a free loopback port; ``options`` go to its Controller:
    tls_context, require_starttls...); ``inbox`` receives (default: a plain Inbox). The inbox
    and the port."""
    inbox = inbox or Inbox()
    port = port or free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def refusing_smtp() -> Iterator[tuple[Inbox, int]]:
    """An SMTP server that refuses every recipient for good."""
    with smtp_server(Refusing()) as server:
        yield server
