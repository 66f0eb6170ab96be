"""Alert lifecycle: fire, repeat after cooldown, escalate by tier, resolve; one notice per alert.

Every replica watches the same dependencies and sees the same changes, so each would notify.
A notice is sent only by the replica that *claims* it: ``SET key NX EX cooldown`` in Redis
for a firing notice of one tier, and ``DEL`` of those claims for the resolve (the replica
whose DEL removed a claim sends that tier's resolve). Without Redis the claims live in
process memory, which is right for the single-replica embedded setup. See
docs/adr/0202-in-service-alerting.md.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import httpx
import structlog
from redis.asyncio import Redis

from auth_service.config.sections import AlertingSettings, Severity
from auth_service.config.settings import MailSettings
from auth_service.health.alerting.channels import Notice, Sender, build_sender
from auth_service.health.monitor import Check, CheckState, Status
from auth_service.mail.service import Transport
from auth_service.observability import metrics

log = structlog.get_logger(__name__)


class Claims(ABC):
    @abstractmethod
    async def claim(self, name: str, ttl_seconds: float) -> bool:
        """True for exactly one caller until the claim expires or is released."""

    @abstractmethod
    async def release(self, name: str) -> bool:
        """True for exactly one caller that removed an existing claim."""


class MemoryClaims(Claims):
    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    async def claim(self, name: str, ttl_seconds: float) -> bool:
        now = time.monotonic()
        if self._until.get(name, 0.0) > now:
            return False
        self._until[name] = now + ttl_seconds
        return True

    async def release(self, name: str) -> bool:
        return self._until.pop(name, 0.0) > time.monotonic()


class RedisClaims(Claims):
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    async def claim(self, name: str, ttl_seconds: float) -> bool:
        ms = max(1, int(ttl_seconds * 1000))
        return bool(await self.redis.set(self.prefix + name, "1", nx=True, px=ms))

    async def release(self, name: str) -> bool:
        return bool(await self.redis.delete(self.prefix + name))


@dataclass
class Active:
    severity: Severity
    summary: str
    since: float


def severity_for(check: Check, state: CheckState) -> Severity | None:
    """down on a critical check pages; anything else not up warns."""
    if state.status is Status.up:
        return None
    if state.status is Status.down and check.critical:
        return Severity.critical
    return Severity.warning


class Alerter:
    """Turns health changes (and explicit alerts) into notices on the configured channels."""

    def __init__(
        self,
        settings: AlertingSettings,
        mail: MailSettings,
        transport: Transport,
        redis: Redis | None,
    ) -> None:
        self._mail = mail
        self._transport = transport
        self._redis = redis
        self._active: dict[str, Active] = {}
        self._queue: asyncio.Queue[tuple[Sender, Notice]] = asyncio.Queue(maxsize=1000)
        self._tasks: list[asyncio.Task[None]] = []
        self._http: httpx.AsyncClient | None = None
        self.apply_settings(settings)

    def apply_settings(self, settings: AlertingSettings) -> None:
        """Hot reload of channels, routes, cooldown and escalation."""
        self.settings = settings
        self.claims: Claims = (
            RedisClaims(self._redis, settings.cluster_key_prefix)
            if self._redis is not None
            else getattr(self, "claims", None) or MemoryClaims()
        )
        self._senders = [
            (c, build_sender(c, self._transport, self._mail.from_address))
            for c in settings.channels
        ]

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=self.settings.timeout_seconds)
        self._tasks = [
            asyncio.create_task(self._deliver_loop(), name="alert-delivery"),
            asyncio.create_task(self._escalation_loop(), name="alert-escalation"),
        ]

    async def stop(self, drain_seconds: float = 2.0) -> None:
        try:
            await asyncio.wait_for(self._queue.join(), timeout=drain_seconds)
        except TimeoutError:
            log.warning("alert_delivery_abandoned", pending=self._queue.qsize())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._http is not None:
            await self._http.aclose()

    async def join(self) -> None:
        """Wait until every queued notice was delivered or given up (tests, shutdown)."""
        await self._queue.join()

    # ---- alert lifecycle -----------------------------------------------------------------

    async def on_check(self, check: Check, state: CheckState, previous: Status | None) -> None:
        """Monitor listener: a change of a check's status fires or resolves its alert."""
        key = f"health:{check.name}"
        severity = severity_for(check, state)
        if severity is None:
            if key in self._active:
                await self.resolve(key)
            return
        current = self._active.get(key)
        if current is None or current.severity is not severity:
            summary = f"health check {check.name} is {state.status.value}"
            if state.message:
                summary += f": {state.message}"
            await self.fire(key, severity, summary)

    async def fire(self, key: str, severity: Severity, summary: str) -> None:
        """Raise (or keep raising) an alert; notices follow cooldown and escalation."""
        current = self._active.get(key)
        since = current.since if current is not None else time.time()
        if current is not None and current.severity is not severity:
            # A new severity is a new alert for the receivers: let every tier hear of it.
            await self._release_all(key)
        self._active[key] = Active(severity, summary, since)
        await self._evaluate(key)

    async def resolve(self, key: str) -> None:
        """End an alert; every tier that was told it fired is told it resolved."""
        active = self._active.pop(key, None)
        if active is None:
            return
        notice = Notice(key, active.severity, active.summary, firing=False, started_at=active.since)
        for tier in range(self._max_tier() + 1):
            if await self._cluster("release", f"{key}:t{tier}"):
                self._enqueue(tier, notice)

    async def _release_all(self, key: str) -> None:
        for tier in range(self._max_tier() + 1):
            await self._cluster("release", f"{key}:t{tier}")

    async def _cluster(self, op: str, name: str, ttl: float = 0.0) -> bool:
        """A claim or release; when Redis is unreachable, notify anyway: a duplicate page
        beats a missed one."""
        try:
            if op == "claim":
                return await self.claims.claim(name, ttl)
            return await self.claims.release(name)
        except Exception as exc:
            log.warning("alert_claim_failed", alert=name, error=type(exc).__name__)
            return True

    def _max_tier(self) -> int:
        return max((c.tier for c, _ in self._senders), default=0)

    async def _evaluate(self, key: str) -> None:
        active = self._active.get(key)
        if active is None:
            return
        age = time.time() - active.since
        due = min(int(age // self.settings.escalation_seconds), self._max_tier())
        notice = Notice(key, active.severity, active.summary, firing=True, started_at=active.since)
        for tier in range(due + 1):
            cooldown = max(self.settings.cooldown_seconds, 1.0)
            if await self._cluster("claim", f"{key}:t{tier}", cooldown):
                self._enqueue(tier, notice)

    def _enqueue(self, tier: int, notice: Notice) -> None:
        for channel, sender in self._senders:
            if channel.tier != tier or notice.severity.rank < channel.min_severity.rank:
                continue
            try:
                self._queue.put_nowait((sender, notice))
            except asyncio.QueueFull:
                metrics.ALERT_DELIVERIES.labels(sender.name, "dropped").inc()

    async def _escalation_loop(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.settings.escalation_seconds / 4))
            for key in list(self._active):
                try:
                    await self._evaluate(key)
                except Exception as exc:
                    log.warning("alert_evaluation_failed", alert=key, error=type(exc).__name__)

    async def _deliver_loop(self) -> None:
        while True:
            sender, notice = await self._queue.get()
            try:
                await self._deliver(sender, notice)
            finally:
                self._queue.task_done()

    async def _deliver(self, sender: Sender, notice: Notice) -> None:
        assert self._http is not None
        s = self.settings
        for attempt in range(1, s.max_attempts + 1):
            try:
                await asyncio.wait_for(sender.send(notice, self._http), s.timeout_seconds)
            except Exception as exc:
                log.warning(
                    "alert_delivery_failed",
                    channel=sender.name,
                    alert=notice.key,
                    attempt=attempt,
                    error=type(exc).__name__,
                    detail=str(exc)[:200] if type(exc).__name__ == "DeliveryError" else None,
                )
                if attempt < s.max_attempts:
                    await asyncio.sleep(s.retry_base_seconds * 2 ** (attempt - 1))
                continue
            metrics.ALERT_DELIVERIES.labels(sender.name, "success").inc()
            log.info("alert_delivered", channel=sender.name, alert=notice.key, state=notice.state)
            return
        metrics.ALERT_DELIVERIES.labels(sender.name, "failure").inc()
