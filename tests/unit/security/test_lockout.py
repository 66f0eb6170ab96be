"""Client networks, lock durations per scope, and the in-memory store's two counters."""

from __future__ import annotations

import pytest

from auth_service.config.settings import LockoutSettings
from auth_service.security.lockout import (
    MemoryLockoutStore,
    Scope,
    client_network,
    lock_keys,
    lock_seconds,
)

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
