"""Client networks, lock durations per scope, the stores' two counters; and, on the memory and
Redis stores alike, locks that double from the base up to the cap, end on their own, and are
forgotten after reset_after_seconds."""

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
    Scope,
    client_network,
    lock_keys,
    lock_seconds,
)
from tests.support.wait import async_wait_for

SETTINGS = LockoutSettings(threshold=3, account_threshold=5, base_seconds=30, max_seconds=120)


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("198.51.100.10", "198.51.100.0/24"),
        ("198.51.100.255", "198.51.100.0/24"),
        ("::ffff:198.51.100.7", "198.51.100.0/24"),  # IPv4-mapped: the IPv4 network
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        (None, "unknown"),
        ("not-an-address", "unknown"),
    ],
)
def test_client_network(ip: str | None, network: str) -> None:
    assert client_network(SETTINGS, ip) == network


def test_prefixes_are_settings() -> None:
    wide = LockoutSettings(ipv4_prefix=16, ipv6_prefix=48)
    assert client_network(wide, "198.51.100.10") == "198.51.0.0/16"
    assert client_network(wide, "2001:db8:1:2::1") == "2001:db8:1::/48"


def test_keys_do_not_hold_the_email_and_separate_networks() -> None:
    a = lock_keys(SETTINGS, "tenant", "ada@example.com", "198.51.100.10")
    b = lock_keys(SETTINGS, "tenant", "ada@example.com", "192.0.2.1")
    assert a.account == b.account
    assert a.network != b.network
    assert "ada" not in a.network + a.account


def test_each_scope_locks_at_its_own_threshold() -> None:
    assert [lock_seconds(SETTINGS, n, Scope.network) for n in range(2, 7)] == [
        0.0,
        30.0,
        60.0,
        120.0,
        120.0,
    ]
    assert [lock_seconds(SETTINGS, n, Scope.account) for n in range(4, 7)] == [0.0, 30.0, 60.0]


async def test_memory_store_counts_both_and_resets_what_it_is_told() -> None:
    store = MemoryLockoutStore(SETTINGS)
    here = lock_keys(SETTINGS, "t", "ada@example.com", "198.51.100.10")
    there = lock_keys(SETTINGS, "t", "ada@example.com", "192.0.2.1")
    started = [await store.record_failure(here) for _ in range(3)]
    assert started == [{}, {}, {Scope.network: 30.0}]
    assert await store.locked_for(here) > 0
    assert await store.locked_for(there) == 0
    assert await store.record_failure(there) == {}
    assert await store.record_failure(there) == {Scope.account: 30.0}
    assert await store.locked_for(there) > 0
    await store.reset(there.network, there.account)
    assert await store.locked_for(there) == 0
    assert await store.locked_for(here) > 0  # the other network's own lock stays


# ---- both stores: doubling, cap, expiry, reset (the network counter; ADR 0004, 0013) ------

TIMED = LockoutSettings(
    threshold=2, account_threshold=50, base_seconds=0.2, max_seconds=0.5, reset_after_seconds=1.5
)
KEYS = lock_keys(TIMED, "tenant", "someone@example.com", "198.51.100.10")


@pytest.fixture(
    params=[pytest.param("memory"), pytest.param("redis", marks=pytest.mark.redis)],
)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[LockoutStore]:
    if request.param == "memory":
        yield MemoryLockoutStore(TIMED)
        return
    client = Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        yield RedisLockoutStore(TIMED, client)
    finally:
        await client.aclose()


async def _network_lock(store: LockoutStore) -> float:
    return (await store.record_failure(KEYS)).get(Scope.network, 0.0)


async def test_locks_double_from_the_base_up_to_the_cap(store: LockoutStore) -> None:
    locks = [await _network_lock(store) for _ in range(6)]
    # Below the threshold no lock; then 0.2 s, doubling with each failure, capped at 0.5 s.
    assert locks == [0.0, 0.2, 0.4, 0.5, 0.5, 0.5]
    assert 0 < await store.locked_for(KEYS) <= 0.5
    other = lock_keys(TIMED, "tenant", "other@example.com", "198.51.100.10")
    assert await store.locked_for(other) == 0.0


async def test_a_lock_ends_on_its_own(store: LockoutStore) -> None:
    await store.record_failure(KEYS)
    started = time.monotonic()
    assert await _network_lock(store) == 0.2
    assert await store.locked_for(KEYS) > 0
    await async_wait_for(lambda: _unlocked(store), 5, "the lock to end")
    assert time.monotonic() - started >= 0.15  # not before its time (clock resolution aside)
    # Still counted: the next failure locks again, for twice as long.
    assert await _network_lock(store) == 0.4


async def _unlocked(store: LockoutStore) -> bool:
    return await store.locked_for(KEYS) == 0.0


async def test_failures_are_forgotten_after_reset_after_seconds(store: LockoutStore) -> None:
    assert await _network_lock(store) == 0.0
    # Forgetting is the absence of memory: only time shows it. A slow machine waits longer,
    # which cannot make this fail wrongly.
    await asyncio.sleep(TIMED.reset_after_seconds + 0.2)
    assert await _network_lock(store) == 0.0  # the first failure again, not the second
    assert await _network_lock(store) == 0.2


async def test_reset_clears_failures_and_lock(store: LockoutStore) -> None:
    for _ in range(3):
        await store.record_failure(KEYS)
    assert await store.locked_for(KEYS) > 0
    await store.reset(KEYS.network, KEYS.account)
    assert await store.locked_for(KEYS) == 0.0
    assert await _network_lock(store) == 0.0


async def test_several_attempts_are_checked_together_locked_if_any_is(store: LockoutStore) -> None:
    # A second factor checks its own counters and the password's, in one call.
    second = lock_keys(TIMED, "tenant", "second-step:someone@example.com", "198.51.100.10")
    assert await store.locked_for(KEYS, second) == 0.0
    for _ in range(2):
        await store.record_failure(second)
    assert await store.locked_for(KEYS) == 0.0
    assert 0 < await store.locked_for(KEYS, second) <= 0.5
    assert 0 < await store.locked_for(second, KEYS) <= 0.5
