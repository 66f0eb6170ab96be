"""The per-IP registration limit counts only attempts that reach password hashing.

Someone trying out the API (a typo in the email, a password the policy refuses) must not use
up the hour's registrations; a flood of valid registrations is still limited. On SQLite and
PostgreSQL, with the limiter in memory and in Redis.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api

PASSWORD = "Tr0ub4dor&3-horse"


@pytest.fixture(params=["memory", "redis"])
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    overrides: dict[str, Any] = {"rate_limits": {"register_per_ip": "20/hour"}}
    if request.param == "redis":
        overrides["redis"] = {"url": request.getfixturevalue("redis_url")}
    return overrides


async def test_refused_registrations_do_not_count_toward_the_per_ip_limit(api: Api) -> None:
    refused = []
    for i in range(25):
        if i % 2:
            r = await api.register(f"not an email {i}", PASSWORD)
        else:
            r = await api.register(f"try{i}@example.com", "password")  # too common
        refused.append((r.status_code, r.json()["type"].rsplit("/", 1)[-1]))
    assert {code for code, _ in refused} == {422}
    assert {slug for _, slug in refused} == {"invalid-email", "weak-password"}

    codes = [(await api.register(f"ok{i}@example.com", PASSWORD)).status_code for i in range(20)]
    assert codes == [202] * 20
    r = await api.register("one-too-many@example.com", PASSWORD)
    assert r.status_code == 429
    assert r.json()["type"].endswith("/rate-limited")
    assert r.headers["retry-after"]
