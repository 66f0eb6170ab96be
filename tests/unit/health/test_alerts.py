"""Alert lifecycle: one notice per alert, cooldown, escalation by tier, resolve, retries,
and one notification across replicas through Redis. Notices go to real loopback receivers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from auth_service.config.sections import AlertingSettings, Severity
from auth_service.config.settings import MailSettings
from auth_service.health.alerting.alerts import Alerter
from auth_service.health.monitor import Check, CheckResult, CheckState, Status
from auth_service.mail.service import OutboxTransport
from auth_service.observability import metrics
from tests.support.receivers import Receiver

# Alerter claims a notice for at least this long, whatever cooldown_seconds says.
COOLDOWN_FLOOR = 1.0


def alerting(receivers: dict[str, tuple[Receiver, int]], **extra: Any) -> AlertingSettings:
    channels = [
        {"type": "webhook", "name": name, "url": r.url + "/hook", "secret": "s" * 32, "tier": tier}
        for name, (r, tier) in receivers.items()
    ]
    data: dict[str, Any] = {
        "enabled": True,
        "channels": channels,
        "retry_base_seconds": 0.01,
        "timeout_seconds": 2,
        **extra,
    }
    return AlertingSettings(**data)


async def make(settings: AlertingSettings, tmp_path: Path, redis: Redis | None = None) -> Alerter:
    alerter = Alerter(settings, MailSettings(), OutboxTransport(tmp_path / "outbox"), redis)
    await alerter.start()
    return alerter


async def wait(receiver: Receiver, count: int) -> list[Any]:
    await asyncio.to_thread(receiver.wait_for, count)
    return [r.json() for r in receiver.requests]


async def test_fire_once_then_resolve(tmp_path: Path) -> None:
    with Receiver() as hook:
        alerter = await make(alerting({"ops": (hook, 0)}), tmp_path)
        try:
            await alerter.fire("health:db", Severity.critical, "db down")
            await alerter.fire("health:db", Severity.critical, "db down")  # persists: no repeat
            await alerter.join()
            await alerter.resolve("health:db")
            await alerter.resolve("health:db")
            await alerter.join()
            bodies = await wait(hook, 2)
        finally:
            await alerter.stop()
    assert [(b["key"], b["state"], b["severity"]) for b in bodies] == [
        ("health:db", "firing", "critical"),
        ("health:db", "resolved", "critical"),
    ]


async def test_cooldown_allows_a_repeat_only_after_it_expires(tmp_path: Path) -> None:
    with Receiver() as hook:
        settings = alerting({"ops": (hook, 0)}, cooldown_seconds=0.3, escalation_seconds=0.2)
        alerter = await make(settings, tmp_path)
        try:
            fired = time.monotonic()
            await alerter.fire("k", Severity.warning, "still broken")
            await wait(hook, 2)  # the escalation loop re-claims after the cooldown
        finally:
            await alerter.stop()
    # Times, not a sleep: a busy machine only delays the repeat, it never brings it forward.
    # The claim lasts the cooldown, at least COOLDOWN_FLOOR (alerts.py), from before the send.
    assert hook.requests[1].at - fired >= COOLDOWN_FLOOR
    assert {r.json()["state"] for r in hook.requests} == {"firing"}


async def test_escalates_to_the_next_tier_and_resolves_both(tmp_path: Path) -> None:
    with Receiver() as slack, Receiver() as pager:
        settings = alerting(
            {"slack": (slack, 0), "pager": (pager, 1)}, escalation_seconds=0.3, cooldown_seconds=60
        )
        alerter = await make(settings, tmp_path)
        try:
            fired = time.monotonic()
            await alerter.fire("k", Severity.critical, "down")
            await wait(slack, 1)
            await wait(pager, 1)
            # Tier 1 hears of it only once the alert is older than the escalation delay.
            assert pager.requests[0].at - fired >= 0.3
            assert slack.requests[0].at < pager.requests[0].at
            await alerter.resolve("k")
            await wait(slack, 2)
            await wait(pager, 2)
        finally:
            await alerter.stop()
    assert [r.json()["state"] for r in slack.requests] == ["firing", "resolved"]
    assert [r.json()["state"] for r in pager.requests] == ["firing", "resolved"]


async def test_severity_filter_and_health_changes(tmp_path: Path) -> None:
    with Receiver() as hook:
        settings = alerting({"pager": (hook, 0)})
        settings.channels[0].min_severity = Severity.critical
        alerter = await make(settings, tmp_path)
        status = Status.degraded

        async def fn() -> CheckResult:
            return CheckResult(status)

        check = Check("redis", fn, critical=True)
        state = CheckState(status=Status.degraded)
        try:
            await alerter.on_check(check, state, Status.up)  # warning: filtered out
            await alerter.join()
            assert hook.requests == []
            state.status = Status.down
            await alerter.on_check(check, state, Status.degraded)  # critical: paged
            state.status = Status.up
            await alerter.on_check(check, state, Status.down)
            bodies = await wait(hook, 2)
        finally:
            await alerter.stop()
    assert [(b["key"], b["state"]) for b in bodies] == [
        ("health:redis", "firing"),
        ("health:redis", "resolved"),
    ]


@pytest.mark.parametrize(
    ("behaviour", "result"),
    [({"fail_first": 2}, "success"), ({"status": 500}, "failure")],
    ids=["retried until delivered", "given up"],
)
async def test_retries_and_counts(tmp_path: Path, behaviour: dict[str, int], result: str) -> None:
    name = f"channel-{result}"
    with Receiver(**behaviour) as hook:
        alerter = await make(alerting({name: (hook, 0)}, max_attempts=3), tmp_path)
        before = metrics.ALERT_DELIVERIES.labels(name, result)._value.get()
        try:
            await alerter.fire("k", Severity.critical, "x")
            await alerter.join()
        finally:
            await alerter.stop()
    assert metrics.ALERT_DELIVERIES.labels(name, result)._value.get() == before + 1


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.mark.redis
async def test_one_notification_across_replicas(tmp_path: Path, redis_client: Redis) -> None:
    with Receiver() as hook:
        settings = alerting({"ops": (hook, 0)}, cluster_key_prefix="test:alerts:")
        replicas = [await make(settings, tmp_path, redis_client) for _ in range(3)]
        try:
            await asyncio.gather(
                *(a.fire("health:db", Severity.critical, "down") for a in replicas)
            )
            await asyncio.gather(*(a.join() for a in replicas))
            await asyncio.gather(*(a.resolve("health:db") for a in replicas))
            # join() returns once every queued notice was delivered: nothing is in flight.
            await asyncio.gather(*(a.join() for a in replicas))
        finally:
            for a in replicas:
                await a.stop()
    assert [r.json()["state"] for r in hook.requests] == ["firing", "resolved"]
