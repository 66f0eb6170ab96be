"""Rate limits and lockout, on the in-memory store and on real Redis."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api

PASSWORD = "Tr0ub4dor&3-horse"


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
    ]
)
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "rate_limits": {
            "login_per_ip": "8/minute",
            "login_per_account": "1000/minute",
            "register_per_ip": "3/minute",
            "forgot_per_account": "2/minute",
            "refresh_per_ip": "4/minute",
        },
        "lockout": {"threshold": 3, "base_seconds": 60, "max_seconds": 600},
    }
    if request.param == "redis":
        overrides["redis"] = {"url": request.getfixturevalue("redis_url")}
    return overrides


async def test_login_rate_limit_per_ip_answers_429_with_retry_after(api: Api) -> None:
    codes = [
        (await api.login(f"u{i}@example.com", "whatever-password")).status_code for i in range(9)
    ]
    assert codes == [401] * 8 + [429]
    r = await api.login("u9@example.com", "whatever-password")
    assert r.status_code == 429
    assert r.json()["type"].endswith("/rate-limited")
    assert 1 <= int(r.headers["retry-after"]) <= 60
    metrics = (await api.management.get("/metrics")).text
    assert 'auth_rate_limit_rejections_total{limiter="ip.login"}' in metrics


async def test_registration_rate_limit(api: Api) -> None:
    codes = [(await api.register(f"r{i}@example.com", PASSWORD)).status_code for i in range(4)]
    assert codes == [202, 202, 202, 429]


async def test_forgot_password_per_account_limit(api: Api) -> None:
    codes = [
        (
            await api.client.post("/v1/auth/password/forgot", json={"email": "who@example.com"})
        ).status_code
        for _ in range(3)
    ]
    assert codes == [202, 202, 429]


async def test_lockout_after_consecutive_failures_even_for_the_right_password(api: Api) -> None:
    await api.register("victim@example.com", PASSWORD)
    codes = [
        (await api.login("victim@example.com", "guess-number-x")).status_code for _ in range(3)
    ]
    assert codes == [401, 401, 401]
    r = await api.login("victim@example.com", PASSWORD)
    assert r.status_code == 429
    assert r.json()["type"].endswith("/account-locked")
    assert 50 <= int(r.headers["retry-after"]) <= 60
    events = await api.services.audit.query(event_type="account.locked")
    assert events[1] == 1


async def test_lockout_is_identical_for_unknown_emails(api: Api) -> None:
    """No enumeration: an account that does not exist locks exactly like one that does."""
    await api.register("real@example.com", PASSWORD)
    real = [await api.login("real@example.com", "guess-number-x") for _ in range(4)]
    ghost = [await api.login("ghost@example.com", "guess-number-x") for _ in range(4)]
    for attempts in (real, ghost):
        assert [r.status_code for r in attempts] == [401, 401, 401, 429]
        assert attempts[3].json()["type"].endswith("/account-locked")
    assert real[3].json()["title"] == ghost[3].json()["title"]


async def test_password_reset_clears_the_lockout(api: Api) -> None:
    await api.register("locked@example.com", PASSWORD)
    for _ in range(3):
        await api.login("locked@example.com", "guess-number-x")
    assert (await api.login("locked@example.com", PASSWORD)).status_code == 429
    await api.client.post("/v1/auth/password/forgot", json={"email": "locked@example.com"})
    mail = next(m for m in await api.mail() if "reset-password" in m)
    import re

    token = re.search(r"token=([A-Za-z0-9_-]+)", mail)
    assert token
    r = await api.client.post(
        "/v1/auth/password/reset",
        json={"token": token.group(1), "new_password": "fresh pass phrase"},
    )
    assert r.status_code == 204
    assert (await api.login("locked@example.com", "fresh pass phrase")).status_code == 200


async def test_refresh_rate_limit(api: Api) -> None:
    user = await api.user()
    token = user["refresh_token"]
    codes = []
    for _ in range(5):
        r = await api.client.post("/v1/auth/refresh", json={"refresh_token": token})
        codes.append(r.status_code)
        if r.status_code == 200:
            token = r.json()["refresh_token"]
    assert codes == [200, 200, 200, 200, 429]


async def test_overload_sheds_logins_before_limiters_and_lockout(api: Api) -> None:
    """A login the hashing queue cannot take is refused first: 503 with Retry-After, and no
    rate-limit budget or lockout failure is spent on it (the same for every email)."""
    hasher = api.services.hasher
    saved = hasher._pending
    hasher._pending = 10_000  # as if that many hashes were queued; nothing else is faked
    try:
        shed = [(await api.login("victim@example.com", "wrong-password")) for _ in range(12)]
    finally:
        hasher._pending = saved
    assert {r.status_code for r in shed} == {503}
    assert shed[0].json()["type"].endswith("/overloaded")
    assert shed[0].headers["retry-after"] == "1"
    # 12 refusals > the per-IP limit of 8 and the lockout threshold of 3, yet neither moved:
    codes = [
        (await api.login("victim@example.com", "wrong-password")).status_code for _ in range(3)
    ]
    assert codes == [401, 401, 401]
    metrics = (await api.management.get("/metrics")).text
    assert 'auth_logins_total{result="shed"}' in metrics
