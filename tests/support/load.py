"""Steady HTTP load from threads, recording every outcome (for shutdown and reload tests)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass
class Load:
    """``clients`` threads each sending GET ``url`` back to back on fresh connections.

    ``routed`` plays the load balancer: clear it and no new request is sent (as when a pod
    leaves the endpoints after failing readiness); requests already sent still complete.
    """

    url: str
    clients: int = 4
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    # When each answered request was answered (time.monotonic()).
    answered_at: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self.routed = threading.Event()
        self.routed.set()
        self._threads = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.clients)
        ]
        self._lock = threading.Lock()

    def _record(self, outcome: str, error: str | None = None) -> None:
        with self._lock:
            self.outcomes[outcome] += 1
            if outcome.isdigit():
                self.answered_at.append(time.monotonic())
            if error:
                self.errors.append(error)

    def _run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=30, limits=limits) as client:
            while not self._stop.is_set():
                if not self.routed.is_set():
                    time.sleep(0.01)
                    continue
                try:
                    r = client.get(self.url)
                except httpx.ConnectError:
                    self._record("refused")
                    time.sleep(0.01)
                    continue
                except httpx.HTTPError as exc:
                    self._record("cut", f"{type(exc).__name__}: {exc}")
                    continue
                self._record(str(r.status_code))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def served(self) -> int:
        return sum(n for k, n in self.outcomes.items() if k.isdigit())

    def failures(self) -> dict[str, int]:
        return {k: n for k, n in self.outcomes.items() if k not in ("200", "refused")}
