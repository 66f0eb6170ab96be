"""Freed heap memory handed back to the system after bursts (glibc ``malloc_trim``).

A burst (login saturation, floods of 64-128 connections) allocates request buffers, parsed
bodies, driver buffers and responses by the thousand at once; once freed, glibc keeps the pages
in its heaps (below the top of each arena, where it cannot shrink them), so a worker's RSS stays
at the burst's high-water mark. ``malloc_trim(0)`` releases every whole free page of every arena
(``madvise(MADV_DONTNEED)``). Served workers call it every ``TRIM_INTERVAL_SECONDS`` in a
thread (ctypes releases the GIL): a few milliseconds of one thread per interval (ADR 0436).
Without glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable

TRIM_INTERVAL_SECONDS = 30.0


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where there is none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


async def trim_periodically(interval: float = TRIM_INTERVAL_SECONDS) -> None:
    """Until cancelled: every ``interval`` seconds, hand free heap pages back."""
    trim = malloc_trim()
    if trim is None:
        return
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(trim, 0)
