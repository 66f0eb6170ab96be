"""``passwords.hash_pool = "processes"``: argon2id runs in child processes of the worker, with
the same answers as the threads (shedding: test_hash_shedding); imported formats stay on
threads."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path

import bcrypt
import pytest
from argon2 import PasswordHasher as Argon2

from auth_service.config.settings import PasswordSettings
from auth_service.security.passwords import (
    HashingOverloaded,
    PasswordHasher,
    VerifyResult,
    in_processes,
)

CHEAP = {"argon2_memory_cost_kib": 1024, "argon2_time_cost": 1, "hash_concurrency": 1}
PHRASE = "Grüße aus Köln, señor"
NFD = unicodedata.normalize("NFD", PHRASE)
NFKC = unicodedata.normalize("NFKC", PHRASE)


@pytest.fixture
async def hasher() -> AsyncIterator[PasswordHasher]:
    made = PasswordHasher(PasswordSettings(**CHEAP, hash_pool="processes"))
    yield made
    made.close()


def _children(hasher: PasswordHasher) -> set[int]:
    pool = hasher._processes
    assert pool is not None
    return {p.pid for p in (pool._processes or {}).values() if p.pid is not None}


async def test_argon2id_runs_in_a_child_process(hasher: PasswordHasher) -> None:
    await hasher.warm_up()
    children = _children(hasher)
    assert len(children) == 1
    assert os.getpid() not in children
    # The child runs at a lower priority than the worker's event loop.
    (child,) = children
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, child) == min(19, own + 10)
    assert hasher.expected_wait() == 0.0
    assert hasher.pending == 0


async def test_same_answers_as_the_threads(hasher: PasswordHasher) -> None:
    encoded = await hasher.hash(NFD)
    assert Argon2().verify(encoded, NFKC)  # the normalised form was hashed
    assert await hasher.verify(encoded, NFD) == VerifyResult(True, False)
    assert await hasher.verify(encoded, "wrong") == VerifyResult(False)
    # A hash of the raw input (before normalisation) verifies and asks for a rehash; so does
    # one with other parameters.
    legacy = Argon2(memory_cost=1024, time_cost=1, parallelism=1).hash(NFD)
    assert await hasher.verify(legacy, NFD) == VerifyResult(True, needs_rehash=True)
    stronger = Argon2(memory_cost=2048, time_cost=1, parallelism=1).hash("pw-123456")
    assert await hasher.verify(stronger, "pw-123456") == VerifyResult(True, needs_rehash=True)
    assert await hasher.verify("$argon2id$garbage", "pw") == VerifyResult(False)


async def test_imported_formats_still_verify(hasher: PasswordHasher) -> None:
    encoded = bcrypt.hashpw(b"imported-pw", bcrypt.gensalt(rounds=4)).decode()
    assert await hasher.verify(encoded, "imported-pw") == VerifyResult(True, needs_rehash=True)
    assert not (await hasher.verify(encoded, "other")).ok


async def test_hot_reloaded_cost_applies_in_the_child(hasher: PasswordHasher) -> None:
    first = await hasher.hash("pw-123456")
    hasher.apply_settings(PasswordSettings(**{**CHEAP, "argon2_time_cost": 2}))
    second = await hasher.hash("pw-123456")
    assert "t=1" in first
    assert "t=2" in second
    assert await hasher.verify(first, "pw-123456") == VerifyResult(True, needs_rehash=True)


@pytest.mark.parametrize(
    ("pool", "production", "expected"),
    [
        ("auto", True, True),  # production: a login flood must not stall the event loops
        ("auto", False, False),  # development and the tests: threads, nothing started
        ("threads", True, False),
        ("processes", False, True),
    ],
)
def test_which_pool(pool: str, production: bool, expected: bool) -> None:
    settings = PasswordSettings.model_validate({**CHEAP, "hash_pool": pool})
    assert in_processes(settings, production) is expected
    made = PasswordHasher(settings, production=production)
    try:
        assert (made._processes is not None) is expected
    finally:
        made.close()


async def test_a_dead_hashing_process_is_replaced(hasher: PasswordHasher) -> None:
    encoded = await hasher.hash("pw-123456")
    (child,) = _children(hasher)
    os.kill(child, signal.SIGKILL)
    # The pool that held it is broken: the operation is answered as overloaded (503, retry),
    # and the next one runs in a new process.
    for _ in range(50):
        try:
            await hasher.verify(encoded, "pw-123456")
        except HashingOverloaded:
            break
        await asyncio.sleep(0.05)  # the pool notices the death asynchronously
    else:
        pytest.fail("a verification in a broken pool succeeded")
    assert await hasher.verify(encoded, "pw-123456") == VerifyResult(True, False)
    assert child not in _children(hasher)
    assert hasher.pending == 0


WORKER = """
import asyncio, os, signal
from auth_service.config.settings import PasswordSettings
from auth_service.security.passwords import PasswordHasher

async def main():
    hasher = PasswordHasher(PasswordSettings(
        argon2_memory_cost_kib=1024, argon2_time_cost=1, hash_concurrency=1,
        hash_pool="processes"))
    await hasher.warm_up()
    print(*(p.pid for p in hasher._processes._processes.values()), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # as uvicorn kills a worker that missed its ping

asyncio.run(main())
"""


def test_hashing_processes_die_with_a_killed_worker() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WORKER], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    (child,) = (int(pid) for pid in done.stdout.split())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; its reaper is init
