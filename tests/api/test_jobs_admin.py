"""Admin API over the job queue, on SQLite and PostgreSQL: dead letters listed and filtered,
retried (the job runs again) and discarded, audited; admins only."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.jobs.kinds import Job, JobKind, PermanentFailure
from tests.support.api import Api

ADMIN_PASSWORD = "admin pass phrase 42"
FLAKY = "test.flaky"


class Flaky:
    """Fails for good until ``healed``; then succeeds."""

    def __init__(self) -> None:
        self.healed = False
        self.runs: list[int] = []

    async def __call__(self, job: Job) -> None:
        self.runs.append(job.attempt)
        if not self.healed:
            raise PermanentFailure("the receiver refused it")


@pytest.fixture
async def admin(api: Api) -> dict[str, str]:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    await api.services.accounts.registration.create_user(
        email, ADMIN_PASSWORD, admin=True, ctx=RequestContext()
    )
    body = (await api.login(email, ADMIN_PASSWORD)).json()
    return api.bearer(body["access_token"])


@pytest.fixture
def flaky(api: Api) -> Flaky:
    handler = Flaky()
    api.services.jobs.register(JobKind(FLAKY, handler))
    return handler


async def _until_state(api: Api, headers: dict[str, str], job_id: uuid.UUID, state: str) -> Any:
    async with asyncio.timeout(15):
        while True:
            job = (await api.client.get(f"/v1/admin/jobs/{job_id}", headers=headers)).json()
            if job["state"] == state:
                return job
            await asyncio.sleep(0.02)


async def test_dead_jobs_are_listed_retried_and_discarded(
    api: Api, admin: dict[str, str], flaky: Flaky
) -> None:
    first = await api.services.jobs.enqueue(FLAKY, {"order": 1})
    second = await api.services.jobs.enqueue(FLAKY, {"order": 2})
    dead = await _until_state(api, admin, first, "dead")
    await _until_state(api, admin, second, "dead")
    assert dead["last_error"] == "PermanentFailure: the receiver refused it"
    assert (dead["attempts"], dead["sealed"], dead["payload"]) == (1, False, {"order": 1})

    r = await api.client.get(
        "/v1/admin/jobs", params={"state": "dead", "kind": FLAKY}, headers=admin
    )
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 2
    assert {j["id"] for j in page["items"]} == {str(first), str(second)}
    r = await api.client.get(
        "/v1/admin/jobs", params={"state": "dead", "kind": "mail"}, headers=admin
    )
    assert r.json()["total"] == 0

    flaky.healed = True
    r = await api.client.post(f"/v1/admin/jobs/{first}/retry", headers=admin)
    assert r.status_code == 200
    assert (r.json()["attempts"], r.json()["state"]) in {(0, "queued"), (1, "running"), (1, "done")}
    done = await _until_state(api, admin, first, "done")
    assert done["attempts"] == 1

    r = await api.client.post(f"/v1/admin/jobs/{second}/discard", headers=admin)
    assert r.status_code == 200
    assert r.json()["state"] == "discarded"
    assert flaky.runs == [1, 1, 1]  # first, second, first again after the retry

    audit, _ = await api.services.audit.query(event_type=events.JOB_RETRIED)
    assert [e.details for e in audit] == [{"job_id": str(first), "job_kind": FLAKY}]
    audit, _ = await api.services.audit.query(event_type=events.JOB_DISCARDED)
    assert [e.details for e in audit] == [{"job_id": str(second), "job_kind": FLAKY}]
    assert audit[0].actor_user_id is not None


async def test_only_dead_jobs_are_retried_or_discarded(
    api: Api, admin: dict[str, str], flaky: Flaky
) -> None:
    flaky.healed = True
    job_id = await api.services.jobs.enqueue(FLAKY, {})
    await _until_state(api, admin, job_id, "done")
    for action in ("retry", "discard"):
        r = await api.client.post(f"/v1/admin/jobs/{job_id}/{action}", headers=admin)
        assert r.status_code == 409
        assert r.json()["type"].endswith("/job-not-dead")
        assert r.json()["state"] == "done"
        r = await api.client.post(f"/v1/admin/jobs/{uuid.uuid4()}/{action}", headers=admin)
        assert r.status_code == 404
        assert r.json()["type"].endswith("/job-not-found")
    r = await api.client.get("/v1/admin/jobs", params={"state": "buried"}, headers=admin)
    assert r.status_code == 422


async def test_mail_jobs_never_show_their_payload(api: Api, admin: dict[str, str]) -> None:
    await api.register("sealed@example.com", "Tr0ub4dor&3-horse")
    await api.mail()
    r = await api.client.get("/v1/admin/jobs", params={"kind": "mail"}, headers=admin)
    (job,) = r.json()["items"]
    assert (job["state"], job["sealed"], job["payload"]) == ("done", True, None)
    assert "sealed@example.com" not in r.text


async def test_the_jobs_api_is_for_admins_only(api: Api) -> None:
    user = await api.user()
    job = uuid.uuid4()
    for method, path in [
        ("GET", "/v1/admin/jobs"),
        ("GET", f"/v1/admin/jobs/{job}"),
        ("POST", f"/v1/admin/jobs/{job}/retry"),
        ("POST", f"/v1/admin/jobs/{job}/discard"),
    ]:
        r = await api.client.request(method, path, headers=api.bearer(user["access_token"]))
        assert r.status_code == 403, (method, path)
        assert (await api.client.request(method, path)).status_code == 401
