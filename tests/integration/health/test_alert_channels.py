"""Every alert channel delivers to a real receiver on loopback: stand-ins for Slack and
PagerDuty that check the payload shape, a webhook that verifies the HMAC signature,
aiosmtpd for email, and a real Alertmanager."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import httpx
import pytest

from auth_service.config.sections import AlertingSettings, Severity
from auth_service.config.settings import MailSettings
from auth_service.health.alerting.alerts import Alerter
from auth_service.mail.service import SmtpTransport
from tests.support.receivers import Receiver
from tests.support.smtp import Inbox
from tests.support.wait import async_wait_for

SECRET = "webhook-signing-secret-0123456789"


async def deliver(channels: list[dict[str, Any]], mail: MailSettings | None = None) -> None:
    """Fire one critical alert, then resolve it, through the given channels."""
    mail = mail or MailSettings()
    settings = AlertingSettings(
        enabled=True,
        channels=channels,
        retry_base_seconds=0.01,  # type: ignore[arg-type]
    )
    alerter = Alerter(settings, mail, SmtpTransport(mail), None)
    await alerter.start()
    try:
        await alerter.fire("health:database", Severity.critical, "database is down")
        await alerter.join()
        await alerter.resolve("health:database")
        await alerter.join()
    finally:
        await alerter.stop()


async def test_slack_incoming_webhook() -> None:
    with Receiver() as slack:
        await deliver(
            [{"type": "slack", "name": "slack", "webhook_url": slack.url + "/services/T/B/X"}]
        )
    first, second = (r.json() for r in slack.requests)
    assert slack.requests[0].path == "/services/T/B/X"
    assert slack.requests[0].headers["Content-Type"] == "application/json"
    assert set(first) == {"text"}
    assert "FIRING" in first["text"]
    assert "database is down" in first["text"]
    assert "RESOLVED" in second["text"]


async def test_pagerduty_events_v2_trigger_and_resolve() -> None:
    with Receiver(status=202) as pd:
        key = "R0UT1NGKEY0123456789012345678901"
        await deliver(
            [{"type": "pagerduty", "name": "pd", "routing_key": key, "url": pd.url + "/v2/enqueue"}]
        )
    trigger, resolve = (r.json() for r in pd.requests)
    assert pd.requests[0].path == "/v2/enqueue"
    assert trigger["routing_key"] == key
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == "health:database"
    payload = trigger["payload"]
    assert {"summary", "source", "severity"} <= set(payload)
    assert payload["severity"] in {"critical", "error", "warning", "info"}
    assert payload["severity"] == "critical"
    assert resolve == {
        "routing_key": key,
        "event_action": "resolve",
        "dedup_key": "health:database",
    }


async def test_webhook_is_signed_with_hmac() -> None:
    with Receiver() as hook:
        await deliver(
            [{"type": "webhook", "name": "hook", "url": hook.url + "/in", "secret": SECRET}]
        )
    for request in hook.requests:
        timestamp = request.headers["X-Auth-Timestamp"]
        expected = hmac.new(
            SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
        ).hexdigest()
        assert request.headers["X-Auth-Signature"] == f"sha256={expected}"
        assert abs(int(timestamp) - time.time()) < 60
    assert [r.json()["state"] for r in hook.requests] == ["firing", "resolved"]


async def test_email_over_smtp(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    mail = MailSettings(
        backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        from_address="alerts@example.com",
    )
    await deliver([{"type": "email", "name": "oncall", "to": ["oncall@example.com"]}], mail)
    subjects = [m["Subject"] for m in inbox.messages]
    assert subjects == [
        "[FIRING critical] database is down",
        "[RESOLVED critical] database is down",
    ]
    assert inbox.messages[0]["To"] == "oncall@example.com"


@pytest.mark.e2e
async def test_real_alertmanager_receives_and_resolves(alertmanager: str) -> None:
    """The real Alertmanager of tests/support/prometheus.py (our routing tree, receivers on a
    dead loopback hook): alert state is read through its API."""
    settings = AlertingSettings(
        enabled=True,
        channels=[{"type": "alertmanager", "name": "am", "url": alertmanager}],  # type: ignore[list-item]
    )
    alerter = Alerter(settings, MailSettings(), SmtpTransport(MailSettings()), None)
    await alerter.start()
    try:
        await alerter.fire("health:redis", Severity.warning, "redis is degraded")
        await alerter.join()
        async with httpx.AsyncClient() as client:
            alerts = (await client.get(f"{alertmanager}/api/v2/alerts")).json()
            ours = [a for a in alerts if a["labels"].get("dedup_key") == "health:redis"]
            assert len(ours) == 1
            assert ours[0]["labels"]["severity"] == "warning"
            assert ours[0]["labels"]["service"] == "auth-service"
            assert ours[0]["annotations"]["summary"] == "redis is degraded"
            assert ours[0]["status"]["state"] == "active"
            await alerter.resolve("health:redis")
            await alerter.join()

            async def resolved() -> bool:
                alerts = (await client.get(f"{alertmanager}/api/v2/alerts")).json()
                return not [a for a in alerts if a["labels"].get("dedup_key") == "health:redis"]

            await async_wait_for(resolved, 10, "Alertmanager to drop the resolved alert")
    finally:
        await alerter.stop()
