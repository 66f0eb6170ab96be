"""Lockout per account *and* client network, with an account-wide backstop (ADR 0013).

A failing attacker locks their own network out, not the owner signing in from another one;
failures spread over many networks lock the account everywhere, and a password reset (which
does not need the attacker to stop) unlocks it. Unknown emails behave exactly like real ones.
On SQLite and PostgreSQL, with the lockout and limiters in memory and in Redis.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import Api

PASSWORD = "Tr0ub4dor&3-horse"
PEER = "203.0.113.7"  # the test client's TCP address, trusted as a proxy below
ATTACKER = "198.51.100.10"
ATTACKER_NEIGHBOUR = "198.51.100.99"  # same /24
OWNER = "192.0.2.20"


@pytest.fixture(params=["memory", "redis"])
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "server": {"trusted_proxies": [f"{PEER}/32"]},
        "rate_limits": {"login_per_account": "6/minute"},
        "lockout": {"threshold": 3, "account_threshold": 7, "base_seconds": 60},
    }
    if request.param == "redis":
        overrides["redis"] = {"url": request.getfixturevalue("redis_url")}
    return overrides


async def _login(api: Api, ip: str, email: str, password: str) -> httpx.Response:
    return await api.login(email, password, headers={"X-Forwarded-For": ip})


def _slug(r: httpx.Response) -> str:
    return str(r.json()["type"]).rsplit("/", 1)[-1] if r.status_code >= 400 else ""


async def test_the_owner_signs_in_from_another_network_while_the_attackers_is_locked(
    api: Api,
) -> None:
    await api.register("victim@example.com", PASSWORD)
    attempts = [await _login(api, ATTACKER, "victim@example.com", "guess-x") for _ in range(8)]
    # Three failures lock the attacker's network; the flood past the per-account limit fills
    # only that network's window too.
    assert [r.status_code for r in attempts[:4]] == [401, 401, 401, 429]
    assert _slug(attempts[3]) == "account-locked"
    assert {_slug(r) for r in attempts[4:]} <= {"account-locked", "rate-limited"}
    for ip in (ATTACKER, ATTACKER_NEIGHBOUR):  # the whole /24, even with the right password
        assert _slug(await _login(api, ip, "victim@example.com", PASSWORD)) in (
            "account-locked",
            "rate-limited",
        )

    assert (await _login(api, OWNER, "victim@example.com", PASSWORD)).status_code == 200
    # The owner's success does not unlock the attacker's network.
    assert _slug(await _login(api, ATTACKER, "victim@example.com", PASSWORD)) in (
        "account-locked",
        "rate-limited",
    )
    locks = (await api.services.audit.query(event_type="account.locked"))[0]
    assert [e.details["scope"] for e in locks] == ["network"]


async def test_failures_from_many_networks_lock_everywhere_until_a_password_reset(
    api: Api,
) -> None:
    await api.register("spread@example.com", PASSWORD)
    # Two failures from each of three networks (below the network threshold of 3), then a
    # seventh from a fourth: the account-wide threshold.
    for net in ("10.0.1", "10.0.2", "10.0.3"):
        for host in (1, 2):
            r = await _login(api, f"{net}.{host}", "spread@example.com", "guess-y")
            assert r.status_code == 401
    assert (await _login(api, "10.0.4.1", "spread@example.com", "guess-y")).status_code == 401
    r = await _login(api, OWNER, "spread@example.com", PASSWORD)
    assert _slug(r) == "account-locked"
    assert 50 <= int(r.headers["retry-after"]) <= 60
    locks = (await api.services.audit.query(event_type="account.locked"))[0]
    assert [e.details["scope"] for e in locks] == ["account"]

    # The unlock path needs nothing from the attacker: the owner resets the password.
    r = await api.client.post(
        "/v1/auth/password/forgot",
        json={"email": "spread@example.com"},
        headers={"X-Forwarded-For": OWNER},
    )
    assert r.status_code == 202
    token = await api.mailed_token("reset-password")
    r = await api.client.post(
        "/v1/auth/password/reset",
        json={"token": token, "new_password": "a fresh pass phrase"},
        headers={"X-Forwarded-For": OWNER},
    )
    assert r.status_code == 204
    r = await _login(api, OWNER, "spread@example.com", "a fresh pass phrase")
    assert r.status_code == 200


async def test_an_unknown_email_locks_exactly_like_a_real_one_at_both_scopes(api: Api) -> None:
    await api.register("real@example.com", PASSWORD)

    async def run(email: str) -> list[tuple[int, str]]:
        seen = []
        for ip in ("10.1.1.1", "10.1.1.2", "10.1.1.3", "10.1.1.4", "10.2.1.1", "10.2.1.2"):
            r = await _login(api, ip, email, "guess-z")
            seen.append((r.status_code, _slug(r)))
        for ip in ("10.3.1.1", "10.3.1.1", OWNER):
            r = await _login(api, ip, email, "guess-z")
            seen.append((r.status_code, _slug(r)))
        return seen

    real, ghost = await run("real@example.com"), await run("ghost@example.com")
    assert real == ghost
    # 10.1.1.0/24 is locked at its 4th attempt (3 failures); the 7th failure in all (from
    # 10.3.1.1) locks the account, so the next attempt, from anywhere, is refused.
    assert [code for code, _ in real] == [401, 401, 401, 429, 401, 401, 401, 401, 429]
    assert real[-1][1] == "account-locked"
