"""A circuit breaker per connector for the calls to its provider.

After ``failures`` consecutive failures (down, slow past the timeout, not the protocol) the
breaker opens: sign-ins through that connector fail at once with UpstreamUnavailable, no
call is made, so a provider that hangs costs nothing more than the page saying so. After
``cooldown`` seconds one sign-in is let through as a probe (half-open): its success closes
the breaker, its failure opens it again for another cooldown.

State is per process (each worker learns on its own within ``failures`` calls); nothing is
shared through Redis, so a breaker never needs Redis to be up to protect the workers.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from auth_service.federation.errors import UpstreamUnavailable


@dataclass
class _State:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


class Breaker:
    def __init__(
        self,
        failures: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._states: dict[str, _State] = {}

    def is_open(self, key: str) -> bool:
        state = self._states.get(key)
        return state is not None and state.opened_at is not None

    def _admit(self, key: str) -> _State:
        state = self._states.setdefault(key, _State())
        if state.opened_at is None:
            return state
        if state.probing or self._clock() - state.opened_at < self.cooldown:
            raise UpstreamUnavailable("circuit_open")
        state.probing = True  # half-open: this call is the probe
        return state

    @asynccontextmanager
    async def call(
        self, key: str, opened: Callable[[], Awaitable[object]] | None = None
    ) -> AsyncIterator[None]:
        """Guard the upstream calls inside. Raises UpstreamUnavailable("circuit_open")
        without running the body while open. An UpstreamUnavailable from the body counts
        as a failure; anything else (the provider answered, even with a refusal) as a
        success. ``opened`` is called when this failure opens the breaker."""
        state = self._admit(key)
        probe = state.probing
        try:
            yield
        except UpstreamUnavailable:
            state.failures += 1
            was_open = state.opened_at is not None
            if probe or state.failures >= self.failures:
                state.opened_at = self._clock()
                if not was_open and opened is not None:
                    await opened()
            raise
        except Exception:
            state.failures = 0  # the provider answered: it is up
            state.opened_at = None
            raise
        else:
            state.failures = 0
            state.opened_at = None
        finally:  # a cancelled probe lets the next call probe again
            if probe:
                state.probing = False
