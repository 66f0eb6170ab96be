"""Mail through the job queue, on SQLite and PostgreSQL: enqueued with its cause, stored
sealed, delivered by a worker with a Message-ID derived from the job, sent once per key."""

from __future__ import annotations

import email
import email.policy
from typing import Any

import pytest
from sqlalchemy import text

from auth_service.db.base import DEFAULT_TENANT_ID
from auth_service.jobs.worker import JobWorker
from auth_service.mail.service import MAIL_KIND, message_id
from tests.support.api import Api

PASSWORD = "Tr0ub4dor&3-horse"


def _messages(api: Api) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in sorted(api.outbox.glob("*.eml"))
    ]


async def _raw_jobs(api: Api) -> list[Any]:
    async with api.services.db.engine.connect() as conn:
        result = await conn.execute(text("SELECT key, state, payload, sealed FROM jobs"))
        return list(result.all())


@pytest.mark.parametrize("settings_overrides", [{"jobs": {"workers": 0}}], indirect=True)
async def test_mail_is_a_sealed_job_delivered_with_a_message_id_of_the_job(api: Api) -> None:
    assert (await api.register("queued@example.com", PASSWORD)).status_code == 202
    (row,) = await _raw_jobs(api)  # no worker in this process: the mail waits in the table
    assert (row.state, row.payload) == ("queued", None)
    sealed = bytes(row.sealed)
    for clear in (b"queued@example.com", b"verify-email", b"token="):
        assert clear not in sealed

    worker = JobWorker(api.services.jobs, api.services.job_upkeep, concurrency=1)
    worker.start()
    try:
        await api.services.mail.join()
    finally:
        await worker.stop(drain_seconds=5)
    (message,) = _messages(api)
    from_address = api.services.settings.mail.from_address
    assert message["Message-ID"] == message_id(DEFAULT_TENANT_ID, row.key, from_address)
    assert message["To"] == "queued@example.com"
    (row,) = await _raw_jobs(api)
    assert (row.state, row.sealed) == ("done", None)  # the delivered body is gone


async def test_one_idempotency_key_sends_one_message(api: Api) -> None:
    mail = api.services.mail
    first = await mail.send("once@example.com", "Hello", "body", key="welcome:once")
    again = await mail.send("once@example.com", "Hello", "body", key="welcome:once")
    await mail.send("twice@example.com", "Hello", "body")
    await mail.send("twice@example.com", "Hello", "body")
    assert first == again
    received = [m["To"] for m in (_messages(api) if await api.mail() else [])]
    assert sorted(received) == ["once@example.com", "twice@example.com", "twice@example.com"]


async def test_mail_is_sent_only_when_its_cause_commits(api: Api) -> None:
    with pytest.raises(RuntimeError):
        await _send_then_fail(api)
    async with api.services.db.transaction() as s:
        await api.services.mail.send("kept@example.com", "Kept", "body", session=s)
    await api.mail()
    assert [m["To"] for m in _messages(api)] == ["kept@example.com"]
    assert await api.services.jobs.pending(MAIL_KIND) == 0


async def _send_then_fail(api: Api) -> None:
    async with api.services.db.transaction() as s:
        await api.services.mail.send("lost@example.com", "Lost", "body", session=s)
        raise RuntimeError("the cause fails after the mail was queued")
