"""Mail over real SMTP: an aiosmtpd server on loopback receives the verification mail; one
that refuses the recipient for good makes the mail job dead at once."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.support.api import Api
from tests.support.smtp import Inbox


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    if hasattr(request, "param"):
        return dict(request.param)
    server = "refusing_smtp" if "refusing_smtp" in request.fixturenames else "smtp"
    smtp: tuple[Inbox, int] = request.getfixturevalue(server)
    return {
        "mail": {
            "backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp[1],
            "smtp_starttls": False,
            "from_address": "Auth <auth@example.com>",
        }
    }


async def test_verification_mail_arrives_over_smtp_and_its_link_verifies(
    api: Api, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    r = await api.register("smtp-user@example.com", "Tr0ub4dor&3-horse")
    assert r.status_code == 202
    await api.services.mail.join()
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == "smtp-user@example.com"
    assert message["From"] == "Auth <auth@example.com>"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    link = re.search(r"(https?://\S+/verify-email\?token=([A-Za-z0-9_-]+))", body.get_content())
    assert link, body.get_content()
    r = await api.client.post("/v1/auth/email/verify", json={"token": link.group(2)})
    assert r.status_code == 204
    login = (await api.login("smtp-user@example.com", "Tr0ub4dor&3-horse")).json()
    me = await api.client.get("/v1/users/me", headers=api.bearer(login["access_token"]))
    assert me.json()["email_verified"] is True


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "mail": {
                "backend": "smtp",
                "smtp_host": "127.0.0.1",
                "smtp_port": 1,
                "smtp_starttls": False,
                "max_attempts": 2,
                "retry_base_seconds": 0.05,
                "smtp_timeout_seconds": 1,
            }
        }
    ],
    indirect=True,
)
async def test_smtp_outage_never_blocks_the_request_and_is_counted(api: Api) -> None:
    start = time.perf_counter()
    r = await api.register("lost-mail@example.com", "Tr0ub4dor&3-horse")
    elapsed = time.perf_counter() - start
    assert r.status_code == 202
    await asyncio.wait_for(api.services.mail.join(), timeout=10)
    assert elapsed < 5  # the request did not wait for the mail retries
    metrics = (await api.management.get("/metrics")).text
    failed = re.search(r"^auth_mail_failed_total (\S+)$", metrics, re.M)
    assert failed
    assert float(failed.group(1)) >= 1


async def test_a_refused_recipient_makes_the_mail_dead_without_retries(
    api: Api, refusing_smtp: tuple[Inbox, int]
) -> None:
    before = REGISTRY.get_sample_value("auth_mail_failed_total") or 0.0
    r = await api.register("nobody@example.com", "Tr0ub4dor&3-horse")
    assert r.status_code == 202
    await api.services.mail.join()
    (job,), _ = await api.services.job_admin.list(kind="mail")
    assert (job.state, job.attempts) == ("dead", 1)  # max_attempts is 2: not retried
    assert job.last_error == "PermanentFailure: SMTP 550"
    assert REGISTRY.get_sample_value("auth_mail_failed_total") == before + 1
