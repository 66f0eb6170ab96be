"""Graceful drain on SIGTERM, for a serving process under uvicorn."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from auth_service.health.monitor import HealthMonitor


class DrainOnTerm:
    """SIGTERM: readiness 503 at once, keep serving ``delay()`` seconds, then hand the signal
    to uvicorn's handler, which stops accepting and finishes in-flight requests within its
    graceful timeout."""

    def __init__(self, monitor: HealthMonitor, delay: Callable[[], float]) -> None:
        self.monitor = monitor
        # Read when the signal comes: health.drain_delay_seconds is hot-reloadable.
        self.delay = delay
        self._previous: Any = None

    def install(self) -> None:
        """Take over SIGTERM (main thread only: Python delivers signals there)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        previous = signal.getsignal(signal.SIGTERM)
        self._previous = previous

        def begin_drain(sig: int, frame: FrameType | None) -> None:
            self.monitor.start_draining()
            if callable(previous):
                loop.call_later(self.delay(), previous, sig, frame)

        def on_term(sig: int, frame: FrameType | None) -> None:
            # A signal handler may interrupt the main thread in the middle of writing a log
            # line; logging from here could deadlock on the handler's lock. Hand over to the
            # event loop, which runs the drain on its next iteration.
            loop.call_soon_threadsafe(begin_drain, sig, frame)

        signal.signal(signal.SIGTERM, on_term)

    def uninstall(self) -> None:
        """Give SIGTERM back to the handler that had it before ``install``."""
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
