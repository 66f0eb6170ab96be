"""Lockout after consecutive failures: locks double from the base up to the cap, end on their
own, and failures are forgotten after reset_after_seconds; on the in-memory store and on
Redis alike (ADR 0004)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from auth_service.config.settings import LockoutSettings
from auth_service.security.lockout import (
    LockoutStore,
    MemoryLockoutStore,
    RedisLockoutStore,
    lockout_key,
)
from tests.support.wait import async_wait_for

SETTINGS = LockoutSettings(threshold=2, base_seconds=0.2, max_seconds=0.5, reset_after_seconds=1.5)
KEY = lockout_key("tenant", "someone@example.com")


@pytest.fixture(
    params=[pytest.param("memory"), pytest.param("redis", marks=pytest.mark.redis)],
)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[LockoutStore]:
    if request.param == "memory":
        yield MemoryLockoutStore(SETTINGS)
        return
    client = Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        yield RedisLockoutStore(SETTINGS, client)
    finally:
        await client.aclose()


async def test_locks_double_from_the_base_up_to_the_cap(store: LockoutStore) -> None:
    locks = [await store.record_failure(KEY) for _ in range(6)]
    # Below the threshold no lock; then 0.2 s, doubling with each failure, capped at 0.5 s.
    assert locks == [0.0, 0.2, 0.4, 0.5, 0.5, 0.5]
    assert 0 < await store.locked_for(KEY) <= 0.5
    assert await store.locked_for(lockout_key("tenant", "other@example.com")) == 0.0


async def test_a_lock_ends_on_its_own(store: LockoutStore) -> None:
    await store.record_failure(KEY)
    started = time.monotonic()
    assert await store.record_failure(KEY) == 0.2
    assert await store.locked_for(KEY) > 0
    await async_wait_for(lambda: _unlocked(store), 5, "the lock to end")
    assert time.monotonic() - started >= 0.15  # not before its time (clock resolution aside)
    # Still counted: the next failure locks again, for twice as long.
    assert await store.record_failure(KEY) == 0.4


async def _unlocked(store: LockoutStore) -> bool:
    return await store.locked_for(KEY) == 0.0


async def test_failures_are_forgotten_after_reset_after_seconds(store: LockoutStore) -> None:
    assert await store.record_failure(KEY) == 0.0
    # Forgetting is the absence of memory: only time shows it. A slow machine waits longer,
    # which cannot make this fail wrongly.
    await asyncio.sleep(SETTINGS.reset_after_seconds + 0.2)
    assert await store.record_failure(KEY) == 0.0  # the first failure again, not the second
    assert await store.record_failure(KEY) == 0.2


async def test_reset_clears_failures_and_lock(store: LockoutStore) -> None:
    for _ in range(3):
        await store.record_failure(KEY)
    assert await store.locked_for(KEY) > 0
    await store.reset(KEY)
    assert await store.locked_for(KEY) == 0.0
    assert await store.record_failure(KEY) == 0.0
