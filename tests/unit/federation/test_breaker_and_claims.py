"""The circuit breaker's states with a clock the test moves (closed, open, half-open probe),
and the claim mapping's dotted paths and JSON pointers."""

from __future__ import annotations

import pytest

from auth_service.federation.breaker import Breaker
from auth_service.federation.connectors import DEFAULT_CLAIMS
from auth_service.federation.errors import FederationTokenInvalid, UpstreamUnavailable
from auth_service.federation.service import lookup, mapped


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def _fail(breaker: Breaker) -> None:
    with pytest.raises(UpstreamUnavailable):
        async with breaker.call("up"):
            raise UpstreamUnavailable


async def _ok(breaker: Breaker) -> None:
    async with breaker.call("up"):
        pass


async def _refused(breaker: Breaker) -> None:
    with pytest.raises(UpstreamUnavailable, match="circuit_open"):
        async with breaker.call("up"):
            raise AssertionError("the body ran while the breaker was open")


async def test_opens_after_consecutive_failures_and_probes_after_the_cooldown() -> None:
    clock = Clock()
    opened: list[str] = []

    async def on_open() -> None:
        opened.append("up")

    breaker = Breaker(failures=3, cooldown=30, clock=clock)
    await _fail(breaker)
    await _fail(breaker)
    await _ok(breaker)  # a success in between resets the count
    await _fail(breaker)
    await _fail(breaker)
    assert not breaker.is_open("up")
    with pytest.raises(UpstreamUnavailable):
        async with breaker.call("up", on_open):
            raise UpstreamUnavailable
    assert breaker.is_open("up")
    assert opened == ["up"]

    await _refused(breaker)
    clock.now = 31
    await _fail(breaker)  # the probe failed: open again for another cooldown
    await _refused(breaker)
    clock.now = 62
    await _ok(breaker)  # the probe answered: closed
    assert not breaker.is_open("up")
    assert opened == ["up"]  # audited once per opening


async def test_a_refusal_from_the_provider_is_not_a_failure() -> None:
    breaker = Breaker(failures=1, cooldown=30, clock=Clock())
    with pytest.raises(FederationTokenInvalid):
        async with breaker.call("up"):
            raise FederationTokenInvalid("token_request")
    assert not breaker.is_open("up")


def test_paths_and_pointers() -> None:
    doc = {"data": {"a/b": 1, "list": [{"x": "y"}], "t~": 2}}
    assert lookup(doc, "data.list.0.x") == "y"
    assert lookup(doc, "/data/list/0/x") == "y"
    assert lookup(doc, "/data/a~1b") == 1
    assert lookup(doc, "/data/t~0") == 2
    assert lookup(doc, "data.missing.x") is None
    assert lookup(doc, "data.list.5") is None


def test_mapped_claims() -> None:
    claims = mapped(
        {"sub": 7, "email": " a@example.com ", "email_verified": "true", "groups": "ops"},
        DEFAULT_CLAIMS,
    )
    assert (claims.subject, claims.email, claims.email_verified) == ("7", "a@example.com", True)
    assert claims.groups == ("ops",)
    for subject in (None, True, "", {"id": 1}):
        with pytest.raises(FederationTokenInvalid):
            mapped({"sub": subject}, DEFAULT_CLAIMS)
