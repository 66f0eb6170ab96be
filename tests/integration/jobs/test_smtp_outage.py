"""SMTP down: the mail job is retried by the queue, survives a restart of the service, and is
delivered by the next process once the SMTP server is back (PostgreSQL, real processes)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx

from tests.integration.jobs.support import Receiver, jobs_table, smtp_env, wait_for
from tests.support.net import free_port
from tests.support.server import Server, base_env, migrate, postgres_database
from tests.support.services import sqlalchemy_url

PASSWORD = "Tr0ub4dor&3-horse"


def test_mail_waits_out_an_smtp_outage_across_a_restart(tmp_path: Path) -> None:
    smtp_port = free_port()  # nothing listens yet: every attempt is refused
    email = f"patient-{uuid.uuid4().hex[:6]}@example.com"
    with postgres_database() as dsn:
        env = base_env(
            tmp_path,
            sqlalchemy_url(dsn),
            **smtp_env(smtp_port),
            AUTH_MAIL__MAX_ATTEMPTS="50",
            AUTH_MAIL__RETRY_BASE_SECONDS="0.2",
            AUTH_JOBS__BACKOFF_BASE_SECONDS="0.2",
            AUTH_JOBS__BACKOFF_MAX_SECONDS="1",
            AUTH_JOBS__POLL_INTERVAL_SECONDS="0.2",
        )
        migrate(tmp_path, env)
        with Server(tmp_path, env) as first:
            r = httpx.post(
                f"{first.url}/v1/auth/register",
                json={"email": email, "password": PASSWORD},
                timeout=30,
            )
            assert r.status_code == 202, r.text

            def retried() -> bool:
                (job,) = jobs_table(dsn)
                return job["attempts"] >= 2 and job["state"] == "queued"

            wait_for(retried, 60)
        (job,) = jobs_table(dsn)  # the service is down; the mail waits in the database
        assert job["state"] == "queued"
        assert "ConnectionRefusedError" in job["last_error"] or "SMTP" in job["last_error"]
        failed_attempts = job["attempts"]

        with Receiver(port=smtp_port) as smtp, Server(tmp_path, env):
            wait_for(lambda: len(smtp.accepted) == 1, 60)
            wait_for(lambda: jobs_table(dsn)[0]["state"] == "done", 30)
            (message,) = smtp.accepted
        (job,) = jobs_table(dsn)
    assert str(message["To"]) == email
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert re.search(r"/verify-email\?token=[A-Za-z0-9_-]{20,}", body.get_content())
    assert job["attempts"] == failed_attempts + 1
