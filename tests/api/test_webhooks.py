"""Lifecycle webhooks through the admin API, on SQLite and PostgreSQL, delivered to a real
receiver that verifies every signature with the reference ``standardwebhooks`` package:
subscriptions, signed deliveries of audit events, secret rotation with both signatures during
the overlap, an outage (retries, then the dead letter in the log), the receiver's return
(delivered once: it dedups by webhook-id), and the SSRF rules."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.tls import self_signed_certificate
from tests.support.wait import async_wait_for
from tests.support.webhook_receiver import WebhookReceiver


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        # The receiver is on loopback over http: both allowed only by explicit settings.
        "webhooks": {"allow_http": True, "allowed_networks": ["127.0.0.1/32"], "max_attempts": 3},
        "jobs": {"poll_interval_seconds": 0.05, "backoff_base_seconds": 0.05},
    }


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver().up()
    yield running
    running.down()


async def _subscribe(api: Api, admin: dict[str, str], url: str, *types: str) -> dict[str, Any]:
    r = await api.client.post(
        "/v1/admin/webhooks", json={"url": url, "event_types": list(types)}, headers=admin
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def _deliveries(api: Api, admin: dict[str, str], hook: str) -> list[dict[str, Any]]:
    r = await api.client.get(f"/v1/admin/webhooks/{hook}/deliveries", headers=admin)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_subscriptions_are_managed_by_admins(api: Api, receiver: WebhookReceiver) -> None:
    admin = await api.admin_headers()
    created = await _subscribe(api, admin, receiver.url, "user.registered", "login.succeeded")
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["login.succeeded", "user.registered"]
    hook = created["id"]

    listed = (await api.client.get("/v1/admin/webhooks", headers=admin)).json()
    assert [h["id"] for h in listed] == [hook]
    assert "secret" not in listed[0]

    r = await api.client.patch(
        f"/v1/admin/webhooks/{hook}",
        json={"event_types": ["email.verified"], "enabled": False, "description": "crm"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    got = (await api.client.get(f"/v1/admin/webhooks/{hook}", headers=admin)).json()
    assert (got["event_types"], got["enabled"], got["description"]) == (
        ["email.verified"],
        False,
        "crm",
    )

    r = await api.client.post(f"/v1/admin/webhooks/{hook}/rotate-secret", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["secret"].startswith("whsec_")
    assert r.json()["secret"] != created["secret"]
    assert r.json()["previous_secret_expires_at"] is not None

    user = await api.user()
    r = await api.client.get("/v1/admin/webhooks", headers=api.bearer(user["access_token"]))
    assert r.status_code == 403

    assert (await api.client.delete(f"/v1/admin/webhooks/{hook}", headers=admin)).status_code == 204
    r = await api.client.get(f"/v1/admin/webhooks/{hook}", headers=admin)
    assert r.status_code == 404
    assert r.json()["type"].endswith("/webhook-not-found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://127.0.0.1/x", "event_types": ["user.registered"]}, "url"),
        ({"url": "https://10.1.2.3/hook", "event_types": ["user.registered"]}, "url"),
        ({"url": "https://[::1]/hook", "event_types": ["user.registered"]}, "url"),
        ({"url": "https://169.254.169.254/latest", "event_types": ["user.registered"]}, "url"),
        ({"url": "https://user:pw@127.0.0.1/x", "event_types": ["user.registered"]}, "url"),
        ({"url": "https://127.0.0.1/x", "event_types": ["user.made_up"]}, "event_types"),
    ],
)
async def test_refused_targets_and_types_are_clear_problems(
    api: Api, body: dict[str, Any], field: str
) -> None:
    admin = await api.admin_headers()
    r = await api.client.post("/v1/admin/webhooks", json=body, headers=admin)
    assert r.status_code == 422, r.text
    problem = r.json()
    if problem["type"].endswith("/invalid-webhook"):
        assert problem["errors"][0]["field"] == field
    else:  # refused by the request schema before the service
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_events_are_delivered_signed_and_rotation_signs_twice(
    api: Api, receiver: WebhookReceiver
) -> None:
    admin = await api.admin_headers()
    created = await _subscribe(api, admin, receiver.url, "user.registered", "login.succeeded")
    receiver.secrets = [created["secret"]]

    user = await api.user()
    await async_wait_for(lambda: len(receiver.processed) >= 2, 30, "registered and logged in")
    assert receiver.rejected == []
    by_type = {m.json()["type"]: m for m in receiver.processed}
    assert set(by_type) == {"user.registered", "login.succeeded"}
    registered = by_type["user.registered"]
    assert registered.webhook_id.startswith("msg_")
    assert registered.json()["data"]["subject_user_id"] is not None
    body = registered.body.decode()
    assert user["password"] not in body
    assert user["access_token"] not in body
    assert user["refresh_token"] not in body
    assert "argon2" not in body

    deliveries = await _deliveries(api, admin, created["id"])
    assert {(d["status"], d["attempts"], d["response_code"]) for d in deliveries} == {
        ("delivered", 1, 200)
    }

    rotated = (
        await api.client.post(f"/v1/admin/webhooks/{created['id']}/rotate-secret", headers=admin)
    ).json()
    # During the overlap a receiver holding either secret accepts the message.
    receiver.must_verify_with = [created["secret"], rotated["secret"]]
    await api.login(user["email"], user["password"])
    await async_wait_for(lambda: len(receiver.processed) >= 3, 30, "the login after rotation")
    assert receiver.rejected == []
    assert len(receiver.processed[-1].headers["webhook-signature"].split(" ")) == 2


async def test_an_outage_ends_in_the_dead_letters_and_the_return_delivers_once(
    api: Api, receiver: WebhookReceiver
) -> None:
    admin = await api.admin_headers()
    created = await _subscribe(api, admin, receiver.url, "user.registered")
    hook = created["id"]
    receiver.secrets = [created["secret"]]
    receiver.down()

    await api.user()

    async def dead() -> list[dict[str, Any]]:
        return [d for d in await _deliveries(api, admin, hook) if d["status"] == "dead"]

    [letter] = await async_wait_for(dead, 30, "the delivery to go dead")
    assert letter["attempts"] == 3
    assert "ConnectError" in letter["last_error"]

    # The delivery log records the last attempt before the worker records the job's outcome.
    async def dead_job() -> dict[str, Any] | None:
        r = await api.client.get(f"/v1/admin/jobs/{letter['job_id']}", headers=admin)
        return r.json() if r.json()["state"] != "running" else None

    job = await async_wait_for(dead_job, 10, "the worker to record the job's outcome")
    assert (job["kind"], job["state"], job["key"]) == ("webhook", "dead", letter["webhook_id"])

    # Back up; the operator retries the dead letter: delivered, once.
    receiver.up()
    r = await api.client.post(f"/v1/admin/jobs/{letter['job_id']}/retry", headers=admin)
    assert r.status_code == 200, r.text

    async def delivered() -> list[dict[str, Any]]:
        return [d for d in await _deliveries(api, admin, hook) if d["status"] == "delivered"]

    [done] = await async_wait_for(delivered, 30, "the retried delivery")
    assert (done["attempts"], done["response_code"]) == (4, 200)
    assert [m.webhook_id for m in receiver.processed] == [letter["webhook_id"]]

    # A receiver that processed a message and fell over before answering gets it again
    # under the same webhook-id, and processes it once.
    receiver.crash_after_processing = 1
    await api.user()
    await async_wait_for(lambda: len(receiver.received) >= 3, 30, "the redelivery")
    second = receiver.received[-1].webhook_id
    assert [m.webhook_id for m in receiver.received[-2:]] == [second, second]
    assert [m.webhook_id for m in receiver.processed].count(second) == 1

    async def redelivered() -> bool:
        log = {d["webhook_id"]: d for d in await _deliveries(api, admin, hook)}
        return log[second]["status"] == "delivered"

    await async_wait_for(redelivered, 30, "the redelivery in the log")
    log = {d["webhook_id"]: d for d in await _deliveries(api, admin, hook)}
    # 204: the receiver's answer to a webhook-id it had already processed.
    assert (log[second]["attempts"], log[second]["response_code"]) == (2, 204)


async def test_deleting_a_subscription_stops_its_deliveries(
    api: Api, receiver: WebhookReceiver
) -> None:
    admin = await api.admin_headers()
    created = await _subscribe(api, admin, receiver.url, "user.registered")
    receiver.secrets = [created["secret"]]
    r = await api.client.delete(f"/v1/admin/webhooks/{created['id']}", headers=admin)
    assert r.status_code == 204
    await api.user(f"late-{uuid.uuid4().hex[:6]}@example.com")
    assert await api.services.jobs.pending("webhook") == 0


async def _first_attempt(api: Api, admin: dict[str, str], hook: str) -> dict[str, Any]:
    async def logged() -> list[dict[str, Any]]:
        return await _deliveries(api, admin, hook)

    [delivery] = await async_wait_for(logged, 30, "the first attempt in the log")
    return delivery


async def _attempt_to(api: Api, receiver: WebhookReceiver) -> dict[str, Any]:
    """The log entry of an event sent to ``receiver``, once an attempt is recorded."""
    admin = await api.admin_headers()
    with receiver:
        created = await _subscribe(api, admin, receiver.url, "user.registered")
        await api.user()
        return await _first_attempt(api, admin, created["id"])


async def test_redirects_are_not_followed(api: Api, receiver: WebhookReceiver) -> None:
    delivery = await _attempt_to(api, WebhookReceiver(redirect_to=receiver.url))
    assert delivery["status"] in ("retrying", "dead")
    assert delivery["response_code"] == 307
    assert delivery["last_error"] == "the receiver answered a redirect (not followed)"
    assert receiver.received == []


async def test_a_slow_receiver_times_out(api: Api) -> None:
    api.services.webhooks.apply_settings(
        api.services.webhooks.settings.model_copy(update={"timeout_seconds": 0.3})
    )
    delivery = await _attempt_to(api, WebhookReceiver(delay_seconds=2))
    assert delivery["status"] in ("retrying", "dead")
    assert delivery["last_error"] == "timed out"
    assert delivery["response_code"] is None


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[WebhookReceiver]:
    cert, key = self_signed_certificate(tmp_path, days=2, name="localhost")
    running = WebhookReceiver(tls=(cert, key), host="localhost").up()
    yield running
    running.down()


async def test_https_goes_to_the_checked_address_under_the_host_name(
    api: Api, tls_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    admin = await api.admin_headers()
    created = await _subscribe(api, admin, tls_receiver.url, "user.registered")
    tls_receiver.secrets = [created["secret"]]
    # Not trusted yet: the certificate of "localhost" is checked although the connection
    # goes to the address resolved and checked beforehand.
    await api.user()
    untrusted = await _first_attempt(api, admin, created["id"])
    assert "CERTIFICATE_VERIFY_FAILED" in (untrusted["last_error"] or "")
    assert tls_receiver.received == []

    cert = next(tmp_path.glob("localhost-*.pem"))
    api.services.webhooks.apply_settings(
        api.services.webhooks.settings.model_copy(update={"ca_file": cert})
    )
    await api.user()
    await async_wait_for(lambda: tls_receiver.processed, 30, "the delivery over https")
    assert tls_receiver.processed[0].headers["host"] == f"localhost:{tls_receiver.port}"
    assert tls_receiver.rejected == []
