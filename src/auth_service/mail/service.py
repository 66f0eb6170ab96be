"""Outgoing mail: queued, sent in the background with retries; never blocks a request.

Transports: SMTP (aiosmtplib, STARTTLS or implicit TLS) in production, ``.eml`` files in
``$AUTH_DATA_DIR/outbox`` for the embedded default.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import os
import random
import ssl
import time
import uuid
from abc import ABC, abstractmethod
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import aiosmtplib
import structlog

from auth_service.config.settings import MailSettings
from auth_service.observability import metrics, tracing

log = structlog.get_logger(__name__)


class Transport(ABC):
    @abstractmethod
    async def send(self, message: EmailMessage) -> None: ...


class OutboxTransport(Transport):
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _write(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        now = time.time_ns()
        # Sortable by creation time (nanoseconds), unique by the random suffix.
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 1_000_000_000))
        name = f"{stamp}.{now % 1_000_000_000:09d}Z-{uuid.uuid4().hex[:12]}.eml"
        tmp = self.directory / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            # RFC 6532 headers: an internationalised address must stay an address, not an
            # RFC 2047 encoded-word (which no parser accepts inside an addr-spec).
            fh.write(message.as_bytes(policy=email.policy.SMTPUTF8))
        tmp.rename(self.directory / name)

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, message)


class SmtpTransport(Transport):
    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self.settings
        context = ssl.create_default_context()
        if not s.smtp_validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            use_tls=s.smtp_tls,
            start_tls=s.smtp_starttls and not s.smtp_tls,
            tls_context=context,
            timeout=s.smtp_timeout_seconds,
        )


def build_transport(settings: MailSettings, outbox: Path) -> Transport:
    return SmtpTransport(settings) if settings.backend == "smtp" else OutboxTransport(outbox)


class MailService:
    def __init__(self, settings: MailSettings, transport: Transport) -> None:
        self._settings = settings
        self._transport = transport
        # Each message travels with the trace context of the request that queued it.
        self._queue: asyncio.Queue[tuple[tuple[str, str, str], tracing.TraceContext]] = (
            asyncio.Queue(maxsize=settings.queue_size)
        )
        self._worker: asyncio.Task[None] | None = None

    @property
    def transport(self) -> Transport:
        """How this service delivers; shared by whatever else sends mail (alert e-mails)."""
        return self._transport

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="mail-worker")

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Give queued mail a moment to go out, then stop the worker."""
        if self._worker is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout=drain_seconds)
        except TimeoutError:
            log.warning("mail_queue_not_drained", pending=self._queue.qsize())
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._worker = None

    async def join(self) -> None:
        """Wait until every queued message was delivered or given up (tests, shutdown)."""
        await self._queue.join()

    def send(self, to: str, subject: str, text: str) -> None:
        """Queue a message and return at once.

        The message is built by the worker, not here: building one costs about a millisecond,
        and flows that mail only when an account exists must not answer that much later.
        """
        try:
            self._queue.put_nowait(((to, subject, text), tracing.current_context()))
        except asyncio.QueueFull:
            metrics.MAIL_FAILED.inc()
            log.error("mail_queue_full", subject=subject)

    def _build(self, to: str, subject: str, text: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._settings.from_address
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain="auth-service")
        message.set_content(text)
        return message

    async def _run(self) -> None:
        while True:
            queued, trace_context = await self._queue.get()
            try:
                with tracing.attached(trace_context), tracing.span("mail.send"):
                    await self._deliver(self._build(*queued))
            finally:
                self._queue.task_done()

    async def _deliver(self, message: EmailMessage) -> None:
        attempts = self._settings.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                await self._transport.send(message)
            except Exception as exc:
                log.warning(
                    "mail_send_failed",
                    attempt=attempt,
                    max_attempts=attempts,
                    error=type(exc).__name__,
                    subject=message["Subject"],
                )
                if attempt == attempts:
                    metrics.MAIL_FAILED.inc()
                    log.error("mail_given_up", subject=message["Subject"])
                    return
                delay = self._settings.retry_base_seconds * 2 ** (attempt - 1)
                await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter only
            else:
                metrics.MAIL_SENT.inc()
                log.info("mail_sent", subject=message["Subject"])
                return
