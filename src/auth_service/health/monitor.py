"""Background health monitor: checks run on their own schedule; probes read the cache.

A probe therefore answers in microseconds whatever the dependencies do, and a slow database
cannot pile probe requests onto it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

import structlog

from auth_service.observability import metrics

log = structlog.get_logger(__name__)


class Status(StrEnum):
    up = "up"
    degraded = "degraded"
    down = "down"

    @property
    def gauge(self) -> float:
        return {"up": 1.0, "degraded": 0.5, "down": 0.0}[self.value]


@dataclass
class CheckResult:
    status: Status
    message: str = ""


CheckFn = Callable[[], Awaitable[CheckResult]]


@dataclass
class Check:
    name: str
    fn: CheckFn
    interval_seconds: float = 5.0
    timeout_seconds: float = 2.0
    critical: bool = True


@dataclass
class CheckState:
    status: Status = Status.down
    message: str = "not checked yet"
    latency_ms: float = 0.0
    last_checked: float | None = None
    last_success: float | None = None
    consecutive_failures: int = 0
    # When the status last changed: alert listeners measure escalation from it.
    changed_at: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "message": self.message,
            "latency_ms": round(self.latency_ms, 2),
            "last_checked": self.last_checked,
            "last_success": self.last_success,
            "consecutive_failures": self.consecutive_failures,
        }


# Called after every check run with (check, state, previous status).
Listener = Callable[[Check, CheckState, Status | None], Awaitable[None]]


@dataclass
class HealthMonitor:
    checks: dict[str, Check] = field(default_factory=dict)
    states: dict[str, CheckState] = field(default_factory=dict)
    started: bool = False
    draining: bool = False
    listeners: list[Listener] = field(default_factory=list)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _running: bool = False

    def register(self, check: Check) -> None:
        self.checks[check.name] = check
        self.states.setdefault(check.name, CheckState())

    async def run_check(self, check: Check) -> CheckState:
        """Run one check within its timeout, update its cached state, metrics and listeners."""
        state = self.states[check.name]
        previous = state.status if state.last_checked is not None else None
        begin = time.perf_counter()
        try:
            result = await asyncio.wait_for(check.fn(), timeout=check.timeout_seconds)
        except TimeoutError:
            result = CheckResult(Status.down, f"timed out after {check.timeout_seconds}s")
        except Exception as exc:
            # The exception text may carry a DSN or a host; its type is enough to act on.
            result = CheckResult(Status.down, f"{type(exc).__name__}")
        elapsed = time.perf_counter() - begin
        state.latency_ms = elapsed * 1000
        state.last_checked = time.time()
        if result.status is not previous:
            state.changed_at = state.last_checked
            log.info(
                "health_check_changed",
                check=check.name,
                status=result.status.value,
                previous=previous.value if previous else None,
                detail=result.message,
            )
        state.status = result.status
        state.message = result.message
        if result.status is Status.up:
            state.last_success = state.last_checked
            state.consecutive_failures = 0
        else:
            state.consecutive_failures += 1
        metrics.HEALTH_CHECK_STATUS.labels(check.name).set(result.status.gauge)
        metrics.HEALTH_CHECK_DURATION.labels(check.name).observe(elapsed)
        self._publish_ready()
        for listener in self.listeners:
            try:
                await listener(check, state, previous)
            except Exception as exc:  # a broken alert route must not stop health checking
                log.warning("health_listener_failed", check=check.name, error=type(exc).__name__)
        return state

    async def run_all(self) -> None:
        await asyncio.gather(*(self.run_check(c) for c in self.checks.values()))

    async def _loop(self, name: str) -> None:
        while True:
            check = self.checks[name]
            await asyncio.sleep(check.interval_seconds)
            await self.run_check(self.checks[name])

    async def start(self) -> None:
        await self.run_all()
        self._running = True
        for name in self.checks:
            self._tasks[name] = asyncio.create_task(self._loop(name), name=f"health:{name}")

    async def replace_checks(self, checks: list[Check]) -> None:
        """Swap the registered checks (hot reload): new ones run at once, gone ones stop."""
        wanted = {c.name: c for c in checks}
        for name in [n for n in self.checks if n not in wanted]:
            task = self._tasks.pop(name, None)
            if task is not None:
                task.cancel()
            del self.checks[name]
            self.states.pop(name, None)
            metrics.HEALTH_CHECK_STATUS.labels(name).set(0)
        added = [c for c in checks if c.name not in self.checks]
        for check in checks:
            self.register(check)
        if added:
            await asyncio.gather(*(self.run_check(c) for c in added))
        if self._running:
            for check in added:
                self._tasks[check.name] = asyncio.create_task(
                    self._loop(check.name), name=f"health:{check.name}"
                )
        self._publish_ready()

    async def stop(self) -> None:
        self._running = False
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = {}

    def start_draining(self) -> None:
        """Readiness turns 503 from now on; in-flight and new requests are still served."""
        if not self.draining:
            log.info("draining")
        self.draining = True
        self._publish_ready()

    def _publish_ready(self) -> None:
        metrics.READY.set(1 if self.ready else 0)

    @property
    def ready(self) -> bool:
        if not self.started or self.draining:
            return False
        return all(
            self.states[name].status is not Status.down
            for name, check in self.checks.items()
            if check.critical
        )

    def not_up(self, *, critical: bool) -> list[str]:
        """Names of the critical (or the other) checks whose status is not up, sorted."""
        return sorted(
            name
            for name, state in self.states.items()
            if state.status is not Status.up
            and name in self.checks
            and self.checks[name].critical is critical
        )

    def overall(self) -> Status:
        statuses = [s.status for s in self.states.values()]
        if not self.ready:
            return Status.down
        return Status.degraded if any(s is not Status.up for s in statuses) else Status.up
