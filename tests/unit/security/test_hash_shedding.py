"""The hashing queue sheds by expected wait, and the pool is sized to the CPUs per worker."""

from __future__ import annotations

import asyncio
import os

import pytest

from auth_service.config.settings import PasswordSettings
from auth_service.security.passwords import HashingOverloaded, PasswordHasher, pool_size

# ~10-40 ms per verification here: long enough for a queue to form, short for the suite.
SLOW = {"argon2_memory_cost_kib": 8192, "argon2_time_cost": 3, "hash_concurrency": 1}


async def _flood(hasher: PasswordHasher, n: int) -> tuple[int, int]:
    encoded = await hasher.hash("correct horse")

    async def one() -> bool:
        try:
            await hasher.verify(encoded, "correct horse")
        except HashingOverloaded:
            return False
        return True

    results = await asyncio.gather(*(one() for _ in range(n)))
    return results.count(True), results.count(False)


@pytest.mark.parametrize("pool", ["threads", "processes"])
async def test_sheds_when_the_wait_ahead_exceeds_the_limit(pool: str) -> None:
    hasher = PasswordHasher(
        PasswordSettings.model_validate({**SLOW, "hash_max_wait_seconds": 0.05, "hash_pool": pool})
    )
    try:
        await hasher.warm_up()
        assert hasher.admits()
        admitted, shed = await _flood(hasher, 30)
    finally:
        hasher.close()
    # One thread: only the few operations that fit in 50 ms of queue get in.
    assert shed > 0
    assert 1 <= admitted < 30
    assert hasher.pending == 0
    assert hasher.expected_wait() == 0.0


async def test_count_limit_only_when_wait_limit_is_off() -> None:
    hasher = PasswordHasher(PasswordSettings(**SLOW, hash_max_wait_seconds=0))
    try:
        admitted, shed = await _flood(hasher, 12)
    finally:
        hasher.close()
    assert (admitted, shed) == (12, 0)


@pytest.mark.parametrize(
    ("cpus", "concurrency", "workers", "threads"),
    [
        (8, 0, 1, 8),  # one worker: every CPU
        (8, 0, 2, 4),  # the CPUs are shared by the workers
        (8, 0, 3, 2),  # rounded down: never more threads than cores
        (8, 0, 64, 1),  # more workers than CPUs: still one thread each
        (2, 3, 2, 3),  # configured: taken as it is
        (None, 0, 1, 1),  # the CPU count unknown
    ],
)
def test_pool_size(
    monkeypatch: pytest.MonkeyPatch, cpus: int | None, concurrency: int, workers: int, threads: int
) -> None:
    # The machine's CPU count is an input of the rule: pinned, so each case states its answer.
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    assert pool_size(PasswordSettings(hash_concurrency=concurrency), workers) == threads
