"""A Redis outage moves the rate limiter and the lockout into the process (ADR 0014): limits
and locks still hold, counted in memory, and readiness stays up but names Redis as down.
When Redis answers again the shared windows apply again and the in-process counts are
dropped. The test's own redis-server is stopped and started again; the shared one is never
touched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.support.api import SQLITE_ONLY, Api
from tests.support.problems import assert_problem
from tests.support.redis_server import RedisServer, redis_server
from tests.support.wait import async_wait_for

pytestmark = [pytest.mark.redis, SQLITE_ONLY]

PER_IP = 6


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture
def settings_overrides(own_redis: RedisServer) -> dict[str, Any]:
    return {
        "redis": {"url": own_redis.url},
        "rate_limits": {"storage": "redis", "login_per_ip": f"{PER_IP}/minute"},
        "lockout": {"threshold": 2, "base_seconds": 60},
    }


def _redis_errors() -> float:
    return REGISTRY.get_sample_value("auth_redis_errors_total") or 0.0


async def _wrong(api: Api, email: str) -> int:
    return (await api.login(email, "not-the-password")).status_code


async def _readiness(api: Api) -> httpx.Response:
    return await api.management.get("/health/ready")


async def test_limits_and_lockout_hold_in_process_while_redis_is_out(
    api: Api, own_redis: RedisServer
) -> None:
    user = await api.user()  # one login of the six per IP, counted in Redis
    email, password = user["email"], user["password"]
    # While Redis answers, the lockout holds: two failures lock the account.
    assert [await _wrong(api, email) for _ in range(2)] == [401, 401]
    assert_problem(await api.login(email, password), 429, "account-locked")

    own_redis.stop()
    before = _redis_errors()
    # The lock of the shared store is out of reach; the process starts counting afresh.
    assert (await api.login(email, password)).status_code == 200
    assert [await _wrong(api, email) for _ in range(2)] == [401, 401]
    assert_problem(await api.login(email, password), 429, "account-locked")
    # Four attempts of this IP in the process's window so far; two more pass, then it is full.
    others = [await _wrong(api, f"other-{i}@example.com") for i in range(PER_IP - 4)]
    assert others == [401] * (PER_IP - 4)
    assert_problem(await api.login(email, password), 429, "rate-limited")
    assert _redis_errors() > before

    # Readiness stays up (the service works) and says what is wrong.
    ready = await async_wait_for(lambda: _degraded(api), 30, "readiness to name redis as down")
    assert ready.json() == {"status": "UP", "detail": "ready; redis down"}
    checks = (await api.management.get("/health")).json()["checks"]
    assert checks["redis"]["status"] == "down"
    assert "in-process" in checks["redis"]["message"]
    assert checks["redis"]["critical"] is False

    # Redis is back (empty, as a restarted cache is): the shared windows apply again, and
    # the in-process lock and window are forgotten.
    own_redis.start()
    await async_wait_for(lambda: _logs_in(api, email, password), 30, "a login once Redis is back")
    before = _redis_errors()
    assert [await _wrong(api, email) for _ in range(2)] == [401, 401]
    assert_problem(await api.login(email, password), 429, "account-locked")
    assert _redis_errors() == before
    await async_wait_for(lambda: _ready_again(api), 30, "readiness without redis down")


async def _degraded(api: Api) -> httpx.Response | None:
    r = await _readiness(api)
    return r if r.status_code == 200 and "redis down" in r.json()["detail"] else None


async def _ready_again(api: Api) -> bool:
    r = await _readiness(api)
    return r.status_code == 200 and r.json()["detail"] == "ready"


async def _logs_in(api: Api, email: str, password: str) -> bool:
    return (await api.login(email, password)).status_code == 200
