"""Alert channels: one payload shape per receiver, each documented by its vendor.

A channel turns a notice into one HTTP request (or one mail); retries, timeouts and counting
happen in ``alerts.Alerter``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx

from auth_service.config.sections import (
    AlertmanagerChannel,
    Channel,
    EmailChannel,
    PagerDutyChannel,
    Severity,
    SlackChannel,
    WebhookChannel,
)
from auth_service.mail.service import Transport

SERVICE = "auth-service"


@dataclass(frozen=True)
class Notice:
    """One thing to tell people: an alert that fires (again) or resolves."""

    key: str
    severity: Severity
    summary: str
    firing: bool
    started_at: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return "firing" if self.firing else "resolved"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class DeliveryError(Exception):
    """The receiver refused or did not answer; the message says which."""


class Sender(ABC):
    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    async def send(self, notice: Notice, http: httpx.AsyncClient) -> None: ...


def _check(response: httpx.Response) -> None:
    if response.status_code >= 300:
        raise DeliveryError(f"status {response.status_code}")


class AlertmanagerSender(Sender):
    """Alertmanager API v2 ``POST /api/v2/alerts``: a resolved alert carries ``endsAt``."""

    def __init__(self, channel: AlertmanagerChannel) -> None:
        super().__init__(channel.name)
        self.url = channel.url.rstrip("/") + "/api/v2/alerts"

    async def send(self, notice: Notice, http: httpx.AsyncClient) -> None:
        alert: dict[str, Any] = {
            "labels": {
                "alertname": "AuthServiceHealth",
                "service": SERVICE,
                "severity": notice.severity.value,
                "dedup_key": notice.key,
            },
            "annotations": {"summary": notice.summary},
            "startsAt": _iso(notice.started_at),
        }
        if not notice.firing:
            alert["endsAt"] = _iso(time.time())
        _check(await http.post(self.url, json=[alert]))


class SlackSender(Sender):
    """Slack incoming webhook: ``{"text": ...}`` with mrkdwn."""

    def __init__(self, channel: SlackChannel) -> None:
        super().__init__(channel.name)
        self.url = channel.webhook_url.get_secret_value()

    async def send(self, notice: Notice, http: httpx.AsyncClient) -> None:
        icon = ":rotating_light:" if notice.firing else ":white_check_mark:"
        text = f"{icon} *{notice.state.upper()}* [{notice.severity.value}] {notice.summary}"
        _check(await http.post(self.url, json={"text": text}))


_PD_SEVERITY = {Severity.info: "info", Severity.warning: "warning", Severity.critical: "critical"}


class PagerDutySender(Sender):
    """PagerDuty Events API v2: trigger and resolve share the ``dedup_key``."""

    def __init__(self, channel: PagerDutyChannel) -> None:
        super().__init__(channel.name)
        self.url = channel.url
        self.routing_key = channel.routing_key.get_secret_value()

    async def send(self, notice: Notice, http: httpx.AsyncClient) -> None:
        body: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": "trigger" if notice.firing else "resolve",
            "dedup_key": notice.key,
        }
        if notice.firing:
            body["payload"] = {
                "summary": notice.summary[:1024],
                "source": SERVICE,
                "severity": _PD_SEVERITY[notice.severity],
                "timestamp": _iso(notice.started_at),
                "custom_details": notice.details,
            }
        _check(await http.post(self.url, json=body))


class EmailSender(Sender):
    def __init__(self, channel: EmailChannel, transport: Transport, from_address: str) -> None:
        super().__init__(channel.name)
        self.to = channel.to
        self.transport = transport
        self.from_address = from_address

    async def send(self, notice: Notice, http: httpx.AsyncClient) -> None:
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = ", ".join(self.to)
        message["Subject"] = f"[{notice.state.upper()} {notice.severity.value}] {notice.summary}"
        message.set_content(
            f"{notice.summary}\n\nalert: {notice.key}\nstate: {notice.state}\n"
            f"since: {_iso(notice.started_at)}\n"
        )
        await self.transport.send(message)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``<timestamp>.<body>``; the timestamp lets receivers refuse replays."""
    return (
        "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )


class WebhookSender(Sender):
    def __init__(self, channel: WebhookChannel) -> None:
        super().__init__(channel.name)
        self.url = channel.url
        self.secret = channel.secret.get_secret_value().encode()

    async def send(self, notice: Notice, http: httpx.AsyncClient) -> None:
        body = json.dumps(
            {
                "key": notice.key,
                "state": notice.state,
                "severity": notice.severity.value,
                "summary": notice.summary,
                "started_at": _iso(notice.started_at),
                "service": SERVICE,
            },
            separators=(",", ":"),
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Auth-Timestamp": timestamp,
            "X-Auth-Signature": sign(self.secret, timestamp, body),
        }
        _check(await http.post(self.url, content=body, headers=headers))


def build_sender(channel: Channel, transport: Transport, from_address: str) -> Sender:
    if isinstance(channel, AlertmanagerChannel):
        return AlertmanagerSender(channel)
    if isinstance(channel, SlackChannel):
        return SlackSender(channel)
    if isinstance(channel, PagerDutyChannel):
        return PagerDutySender(channel)
    if isinstance(channel, EmailChannel):
        return EmailSender(channel, transport, from_address)
    return WebhookSender(channel)
