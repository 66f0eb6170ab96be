"""A Redis outage fails the rate limiter and the lockout open (ADR 0004): logins go on, no
limit or lock refuses them, and every call that could not reach Redis is counted in
auth_redis_errors_total. The test's own redis-server is stopped and started again; the shared
one is never touched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.support.api import SQLITE_ONLY, Api
from tests.support.problems import assert_problem
from tests.support.redis_server import RedisServer, redis_server

pytestmark = [pytest.mark.redis, SQLITE_ONLY]

# Redis calls a login makes: the per-IP and per-account limiters, the lockout check, then
# recording the failure (wrong password) or clearing the failures (right password).
CALLS_PER_LOGIN = 4


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture
def settings_overrides(own_redis: RedisServer) -> dict[str, Any]:
    return {
        "redis": {"url": own_redis.url},
        "rate_limits": {"storage": "redis", "login_per_ip": "6/minute"},
        "lockout": {"threshold": 2, "base_seconds": 60},
    }


def _redis_errors() -> float:
    return REGISTRY.get_sample_value("auth_redis_errors_total") or 0.0


async def _wrong(api: Api, email: str) -> int:
    return (await api.login(email, "not-the-password")).status_code


async def test_limiter_and_lockout_fail_open_and_count_it(api: Api, own_redis: RedisServer) -> None:
    user = await api.user()  # one login of the six per IP
    # While Redis answers, the lockout holds: two failures lock the account.
    assert [await _wrong(api, user["email"]) for _ in range(2)] == [401, 401]
    assert_problem(await api.login(user["email"], user["password"]), 429, "account-locked")

    own_redis.stop()
    before = _redis_errors()
    # The lock is not enforced: its state is out of reach, and the right password logs in.
    assert (await api.login(user["email"], user["password"])).status_code == 200
    # Neither the lockout (2) nor the per-IP limit (6 a minute, 4 used) refuses a guess.
    assert [await _wrong(api, user["email"]) for _ in range(6)] == [401] * 6
    assert _redis_errors() - before == 7 * CALLS_PER_LOGIN

    # Redis is back (empty, as a restarted cache is): limits and lockout hold again.
    own_redis.start()
    before = _redis_errors()
    assert [await _wrong(api, user["email"]) for _ in range(2)] == [401, 401]
    assert_problem(await api.login(user["email"], user["password"]), 429, "account-locked")
    assert _redis_errors() == before
