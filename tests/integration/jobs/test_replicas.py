"""Several replicas and workers on one PostgreSQL database, delivering to a real SMTP server.

- Normal case: M mails enqueued through three `auth-service serve` replicas (each runs a job
  worker) and a separate `auth-service jobs work`; every job completes exactly once: M
  messages at the SMTP server, M distinct Message-IDs, each job claimed once.
- A worker killed with SIGKILL mid-job: the job is claimed again once its lease expires
  (at least once). Killed before the server accepted the message, the receiver gets it
  once; killed after, it gets it twice with the same Message-ID, so a receiver that
  deduplicates by Message-ID sees one message. The kill is placed by the SMTP server, which
  holds the conversation at DATA (before) or QUIT (after) until the worker is dead.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from auth_service.services import build_services
from tests.integration.jobs.support import (
    Hold,
    Receiver,
    WorkerProcess,
    jobs_table,
    smtp_env,
    wait_for,
)
from tests.support.server import Server, base_env, migrate, postgres_database
from tests.support.services import sqlalchemy_url
from tests.support.settings import make_settings

PASSWORD = "Tr0ub4dor&3-horse"
MAILS = 24
# Short leases so a killed worker's job is claimable again within seconds.
FAST_JOBS = {
    "AUTH_JOBS__LEASE_SECONDS": "2",
    "AUTH_JOBS__POLL_INTERVAL_SECONDS": "0.2",
    "AUTH_JOBS__DRAIN_SECONDS": "5",
    "AUTH_MAIL__MAX_ATTEMPTS": "5",
}


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_database() as dsn:
        yield dsn


def _env(tmp: Path, dsn: str, smtp_port: int) -> dict[str, str]:
    return base_env(tmp, sqlalchemy_url(dsn), **smtp_env(smtp_port), **FAST_JOBS)


def _register(server: Server, n: int) -> str:
    email = f"replica-{n}-{uuid.uuid4().hex[:6]}@example.com"
    r = httpx.post(
        f"{server.url}/v1/auth/register", json={"email": email, "password": PASSWORD}, timeout=30
    )
    assert r.status_code == 202, r.text
    return email


def test_each_job_runs_once_across_replicas_and_workers(tmp_path: Path, database: str) -> None:
    with Receiver() as smtp:
        env = _env(tmp_path, database, smtp.port)
        migrate(tmp_path, env)
        servers = [Server(tmp_path, env) for _ in range(3)]
        worker = WorkerProcess(tmp_path, env, "apart")
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda p: p.start(), [*servers, worker]))
        try:
            with ThreadPoolExecutor(6) as pool:
                recipients = list(pool.map(lambda n: _register(servers[n % 3], n), range(MAILS)))
            wait_for(lambda: len(smtp.accepted) >= MAILS, 60)
            wait_for(lambda: all(j["state"] == "done" for j in jobs_table(database)), 30)
            jobs = jobs_table(database)
        finally:
            for process in servers:
                process.stop()
            worker.kill(signal.SIGTERM)
        accepted = smtp.accepted
    assert len(jobs) == MAILS
    assert {(j["kind"], j["state"], j["attempts"]) for j in jobs} == {("mail", "done", 1)}
    assert len(accepted) == MAILS  # nothing arrived after the jobs were done either
    assert sorted(str(m["To"]) for m in accepted) == sorted(recipients)
    assert len({m["Message-ID"] for m in accepted}) == MAILS
    # The work was shared: more than one process delivered (each wakes its own worker first).
    logs = [p.logs() for p in servers] + [worker.logs()]
    delivered = Counter(i for i, text in enumerate(logs) for _ in range(text.count('"mail_sent"')))
    assert sum(delivered.values()) == MAILS
    assert len(delivered) >= 2, delivered


async def _enqueue_one(tmp: Path, dsn: str, smtp_port: int) -> uuid.UUID:
    mail = {"backend": "smtp", "smtp_port": smtp_port, "from_address": "no-reply@auth.example"}
    services = build_services(make_settings(tmp, sqlalchemy_url(dsn), mail=mail))
    try:
        return await services.mail.send("victim@example.com", "Hello", "Exactly one effect")
    finally:
        await services.close()


@pytest.mark.parametrize(
    ("hold", "deliveries"),
    [("DATA", 1), ("QUIT", 2)],
    ids=["killed-before-the-server-accepted", "killed-after-the-server-accepted"],
)
def test_a_worker_killed_mid_job_leaves_it_to_another(
    tmp_path: Path, database: str, hold: Hold, deliveries: int
) -> None:
    with Receiver(hold=hold) as smtp:
        env = _env(tmp_path, database, smtp.port)
        migrate(tmp_path, env)
        job_id = asyncio.run(_enqueue_one(tmp_path, database, smtp.port))
        with WorkerProcess(tmp_path, env, "a") as first:
            # The only worker claims the job and is now inside the SMTP conversation.
            wait_for(smtp.held.is_set, 60, first.check_alive)
            assert first.kill(signal.SIGKILL) == -signal.SIGKILL
        smtp.release.set()
        (job,) = jobs_table(database)
        assert (job["id"], job["state"], job["attempts"]) == (job_id, "running", 1)
        with WorkerProcess(tmp_path, env, "b") as second:
            # Claimable again once the dead worker's lease (2 s) expires.
            wait_for(lambda: jobs_table(database)[0]["state"] == "done", 60, second.check_alive)
            assert second.kill(signal.SIGTERM) == 0  # and a graceful stop exits cleanly
        accepted = smtp.accepted
    (job,) = jobs_table(database)
    assert job["attempts"] == 2
    assert len(accepted) == deliveries
    assert {str(m["To"]) for m in accepted} == {"victim@example.com"}
    # Every copy is the same message: a receiver deduplicating by Message-ID sees one.
    assert len({m["Message-ID"] for m in accepted}) == 1
