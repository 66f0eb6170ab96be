"""The SMTP relay is down when mail is sent: today's queue (mail/service.py) keeps the message
in the process and retries with backoff, and delivers it once the relay answers; after
``mail.max_attempts`` it gives up and counts it. Delivery across a restart of the service is
the durable job queue's (jobs/, built separately), not this one's: a message given up, or
queued when the process stops, is lost; these tests pin today's behaviour down so the change
shows when it comes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import pytest
import structlog.testing
from prometheus_client import REGISTRY

from auth_service.config.settings import MailSettings
from auth_service.mail.service import MailService, SmtpTransport
from tests.support.net import free_port, listening
from tests.support.smtp import smtp_server
from tests.support.wait import async_wait_for


def _relay(port: int, max_attempts: int) -> MailSettings:
    return MailSettings(
        backend="smtp",
        from_address="Auth <auth@example.com>",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_timeout_seconds=2,
        max_attempts=max_attempts,
        retry_base_seconds=0.05,
    )


@pytest.fixture
async def mail_to_nowhere() -> AsyncIterator[tuple[MailService, int]]:
    """A mail service whose relay port has nothing listening (yet); stopped afterwards."""
    port = free_port()
    assert not listening(port)
    settings = _relay(port, max_attempts=12)
    service = MailService(settings, SmtpTransport(settings))
    service.start()
    try:
        yield service, port
    finally:
        await service.stop(drain_seconds=0)


def _events(logs: list[MutableMapping[str, Any]], event: str, subject: str) -> list[Any]:
    """The ``event`` log entries of the message with ``subject``, in order."""
    return [e for e in logs if e.get("event") == event and e.get("subject") == subject]


def _count(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_mail_waits_in_the_queue_until_the_relay_is_back(
    mail_to_nowhere: tuple[MailService, int],
) -> None:
    service, port = mail_to_nowhere
    subject = f"reset link {uuid.uuid4().hex[:8]}"
    sent, failed = _count("auth_mail_sent_total"), _count("auth_mail_failed_total")
    # The service's own log entries tell its attempts, wherever the suite sends its logs.
    with structlog.testing.capture_logs() as logs:
        service.send("ada@example.com", subject, "Your link: https://auth.example.com/x")
        # Refused twice: the message is still queued, waiting for its next attempt.
        await async_wait_for(
            lambda: len(_events(logs, "mail_send_failed", subject)) >= 2, 20, "retries"
        )
        with smtp_server(port) as (inbox, _):
            await asyncio.wait_for(service.join(), 30)
    assert [str(m["Subject"]) for m in inbox.messages] == [subject]
    assert [m["To"] for m in inbox.messages] == ["ada@example.com"]
    attempts = [e["attempt"] for e in _events(logs, "mail_send_failed", subject)]
    assert attempts == list(range(1, len(attempts) + 1))  # one message, retried in order
    assert len(_events(logs, "mail_sent", subject)) == 1
    assert _count("auth_mail_sent_total") == sent + 1
    assert _count("auth_mail_failed_total") == failed
    assert not _events(logs, "mail_given_up", subject)


async def test_mail_is_given_up_after_max_attempts_and_counted() -> None:
    port = free_port()
    settings = _relay(port, max_attempts=2)
    service = MailService(settings, SmtpTransport(settings))
    service.start()
    subject = f"verify {uuid.uuid4().hex[:8]}"
    failed = _count("auth_mail_failed_total")
    try:
        with structlog.testing.capture_logs() as logs:
            service.send("bea@example.com", subject, "Your link: https://auth.example.com/y")
            await asyncio.wait_for(service.join(), 30)
    finally:
        await service.stop(drain_seconds=0)
    assert _count("auth_mail_failed_total") == failed + 1
    assert len(_events(logs, "mail_send_failed", subject)) == 2
    assert len(_events(logs, "mail_given_up", subject)) == 1
