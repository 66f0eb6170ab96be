"""Outgoing mail: a durable job (kind ``mail``) enqueued with its cause, delivered by a job
worker with retries; never blocks a request, survives restarts (ADR 0900).

Transports: SMTP (aiosmtplib, STARTTLS or implicit TLS) in production, ``.eml`` files in
``$AUTH_DATA_DIR/outbox`` for the embedded default.
"""

from __future__ import annotations

import asyncio
import email.policy
import os
import ssl
import time
import uuid
from abc import ABC, abstractmethod
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

import aiosmtplib
import structlog
from sqlalchemy import Insert
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.config.settings import MailSettings
from auth_service.db.base import DEFAULT_TENANT_ID
from auth_service.jobs.kinds import Job, JobKind, PermanentFailure
from auth_service.jobs.queue import JobQueue
from auth_service.observability import metrics

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
        self._context: tuple[bool, ssl.SSLContext] | None = None

    def _tls_context(self) -> ssl.SSLContext:
        """One TLS context per certificate policy, reused by every delivery: building one
        loads the system CA bundle (~20-30 ms of CPU here), which a worker paid on every
        attempt, retries included (the bench's flame graphs, bench/README.md)."""
        validate = self.settings.smtp_validate_certs
        if self._context is None or self._context[0] is not validate:
            context = ssl.create_default_context()
            if not validate:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._context = (validate, context)
        return self._context[1]

    async def send(self, message: EmailMessage) -> None:
        s = self.settings
        context = self._tls_context()
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


MAIL_KIND = "mail"
# Message-IDs are uuid5 names of the job's (tenant, kind, idempotency key) in this namespace.
_MESSAGE_ID_NAMESPACE = uuid.UUID("0a3d8f6e-5c1b-4d7e-9b2a-6f1c3e8d9a40")


def message_id(tenant_id: uuid.UUID, key: str, from_address: str) -> str:
    """The Message-ID of the mail job with idempotency ``key`` (RFC 5322 section 3.6.4):
    the same for every attempt, so a receiver that deduplicates by Message-ID sees one
    message even when a retry follows a delivery the worker did not live to record."""
    local = uuid.uuid5(_MESSAGE_ID_NAMESPACE, f"{tenant_id}/{MAIL_KIND}/{key}").hex
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "auth-service"
    return f"<{local}@{domain}>"


class MailService:
    """Sends mail through the job queue: ``send`` enqueues, a worker delivers."""

    def __init__(self, settings: MailSettings, transport: Transport, jobs: JobQueue) -> None:
        self._settings = settings
        self._transport = transport
        self._jobs = jobs
        jobs.register(
            JobKind(
                MAIL_KIND,
                self._deliver,
                sealed=True,  # bodies carry one-time links
                max_attempts=settings.max_attempts,
                backoff_base_seconds=settings.retry_base_seconds,
                # An SMTP conversation that outlives its own timeouts is stuck.
                timeout_seconds=settings.smtp_timeout_seconds * 6,
                on_dead=self._given_up,
            )
        )

    @property
    def transport(self) -> Transport:
        """How this service delivers; shared by whatever else sends mail (alert e-mails)."""
        return self._transport

    async def send(
        self,
        to: str,
        subject: str,
        text: str,
        *,
        session: AsyncSession | None = None,
        key: str | None = None,
        tenant_id: uuid.UUID = DEFAULT_TENANT_ID,
    ) -> uuid.UUID:
        """Queue a message; returns its job id at once (delivery happens in a worker).

        ``session``: the caller's transaction, so the mail exists if and only if what caused
        it commits. ``key``: an idempotency key (sending the same key again sends nothing
        new); by default each call is a new message. Either way the Message-ID is derived
        from the job, identical on every attempt.
        """
        job_key = key or uuid.uuid4().hex
        return await self._jobs.enqueue(
            MAIL_KIND,
            self._payload(to, subject, text, job_key, tenant_id),
            key=job_key,
            session=session,
            tenant_id=tenant_id,
        )

    def prepare(
        self, to: str | None, subject: str, text: str, *, tenant_id: uuid.UUID = DEFAULT_TENANT_ID
    ) -> Insert:
        """The mail job of a message, for a caller that stores it with its own writes
        (``Database.write_together``; then ``wake``). ``to`` None: a decoy, the same work
        and statement for a message that must not go out (ADR 0011)."""
        job_key = uuid.uuid4().hex
        payload = self._payload(to or "", subject, text, job_key, tenant_id)
        return self._jobs.prepare(
            MAIL_KIND, payload, key=job_key, tenant_id=tenant_id, decoy=to is None
        )

    def wake(self) -> None:
        """Tell this process's worker that mail was stored (after ``prepare``)."""
        self._jobs.wake()

    def _payload(
        self, to: str, subject: str, text: str, key: str, tenant_id: uuid.UUID
    ) -> dict[str, Any]:
        return {
            "to": to,
            "subject": subject,
            "text": text,
            "date": format_datetime(self._jobs.clock()),
            "message_id": message_id(tenant_id, key, self._settings.from_address),
        }

    async def join(self, within: float = 30.0) -> None:
        """Wait until no mail job is queued or running: delivered, or dead (tests, scripts).
        TimeoutError after ``within`` seconds (no worker running?)."""
        async with asyncio.timeout(within):
            # Polls: the table is the one place that knows, whichever process delivers.
            while await self._jobs.pending(MAIL_KIND):  # noqa: ASYNC110
                await asyncio.sleep(0.02)

    def compose(self, payload: dict[str, Any]) -> EmailMessage:
        """The message of a mail job: the same headers on every attempt."""
        message = EmailMessage()
        message["From"] = self._settings.from_address
        message["To"] = payload["to"]
        message["Subject"] = payload["subject"]
        message["Date"] = payload["date"]
        message["Message-ID"] = payload["message_id"]
        message.set_content(payload["text"])
        return message

    async def _deliver(self, job: Job) -> None:
        message = self.compose(job.payload)
        try:
            await self._transport.send(message)
        except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused) as exc:
            codes = _reply_codes(exc)
            # 5xx: the server refuses this message for good (RFC 5321 section 4.2.1).
            if codes and all(500 <= code < 600 for code in codes):
                raise PermanentFailure(f"SMTP {'/'.join(map(str, codes))}") from None
            raise
        metrics.MAIL_SENT.inc()
        log.info("mail_sent", job_id=str(job.id), attempt=job.attempt, subject=message["Subject"])

    def _given_up(self, job_id: uuid.UUID, error: str) -> None:
        metrics.MAIL_FAILED.inc()
        log.error("mail_given_up", job_id=str(job_id), error=error)


def _reply_codes(exc: Exception) -> list[int]:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return [r.code for r in exc.recipients]
    return [exc.code] if isinstance(exc, aiosmtplib.SMTPResponseException) else []
