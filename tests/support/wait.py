"""Polling for an event instead of sleeping and hoping it happened.

On a shared two-core machine any fixed sleep is sometimes too short; a deadline is only ever
reached when the event really did not happen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class NotInTime(AssertionError):
    """The awaited event did not happen before the deadline: the test fails."""


def wait_for(
    predicate: Callable[[], T], timeout: float = 20.0, what: str = "", interval: float = 0.05
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    Raises NotInTime naming ``what`` when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise NotInTime(f"not within {timeout}s: {what or predicate}")
        time.sleep(interval)


async def async_wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 20.0,
    what: str = "",
    interval: float = 0.05,
) -> T:
    """``wait_for`` inside an event loop; ``predicate`` may be a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise NotInTime(f"not within {timeout}s: {what or predicate}")
        await asyncio.sleep(interval)
