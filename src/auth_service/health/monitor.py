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

log = structlog.get_logger(__name__)


class Status(StrEnum):
    up = "up"
    degraded = "degraded"
    down = "down"


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

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "message": self.message,
            "latency_ms": round(self.latency_ms, 2),
            "last_checked": self.last_checked,
            "last_success": self.last_success,
            "consecutive_failures": self.consecutive_failures,
        }


@dataclass
class HealthMonitor:
    checks: dict[str, Check] = field(default_factory=dict)
    states: dict[str, CheckState] = field(default_factory=dict)
    started: bool = False
    draining: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def register(self, check: Check) -> None:
        self.checks[check.name] = check
        self.states[check.name] = CheckState()

    async def run_check(self, check: Check) -> CheckState:
        state = self.states[check.name]
        begin = time.perf_counter()
        try:
            result = await asyncio.wait_for(check.fn(), timeout=check.timeout_seconds)
        except TimeoutError:
            result = CheckResult(Status.down, f"timed out after {check.timeout_seconds}s")
        except Exception as exc:
            result = CheckResult(Status.down, f"{type(exc).__name__}")
        state.latency_ms = (time.perf_counter() - begin) * 1000
        state.last_checked = time.time()
        if result.status is not state.status:
            log.info(
                "health_check_changed",
                check=check.name,
                status=result.status.value,
                previous=state.status.value,
                message=result.message,
            )
        state.status = result.status
        state.message = result.message
        if result.status is Status.up:
            state.last_success = state.last_checked
            state.consecutive_failures = 0
        else:
            state.consecutive_failures += 1
        return state

    async def run_all(self) -> None:
        await asyncio.gather(*(self.run_check(c) for c in self.checks.values()))

    async def _loop(self, check: Check) -> None:
        while True:
            await asyncio.sleep(check.interval_seconds)
            await self.run_check(check)

    async def start(self) -> None:
        await self.run_all()
        self._tasks = [
            asyncio.create_task(self._loop(c), name=f"health:{c.name}")
            for c in self.checks.values()
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    @property
    def ready(self) -> bool:
        if not self.started or self.draining:
            return False
        return all(
            self.states[name].status is not Status.down
            for name, check in self.checks.items()
            if check.critical
        )

    def overall(self) -> Status:
        statuses = [s.status for s in self.states.values()]
        if not self.ready:
            return Status.down
        return Status.degraded if any(s is not Status.up for s in statuses) else Status.up
