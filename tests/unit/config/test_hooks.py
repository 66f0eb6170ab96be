"""Reload hooks run in registration order, only when their part changed, and the first that
raises stops the rest."""

from __future__ import annotations

import pytest

from auth_service.config.hooks import ReloadHooks
from auth_service.config.reload import ReloadRejected
from auth_service.config.settings import Settings

OLD = Settings()
NEW = Settings(lockout={"threshold": 9})  # type: ignore[arg-type]


async def test_hooks_run_in_registration_order_with_the_new_settings() -> None:
    seen: list[tuple[str, int]] = []
    hooks = ReloadHooks()

    async def first(new: Settings) -> None:
        seen.append(("first", new.lockout.threshold))

    hooks.register("first", first)
    hooks.register("second", lambda new: seen.append(("second", new.lockout.threshold)))
    hooks.register("third", lambda new: seen.append(("third", new.lockout.threshold)))

    await hooks.apply(NEW, previous=OLD)

    assert seen == [("first", 9), ("second", 9), ("third", 9)]
    assert hooks.names == ["first", "second", "third"]


async def test_when_changed_hooks_run_only_for_their_part() -> None:
    seen: list[str] = []
    hooks = ReloadHooks()
    hooks.register("lockout", lambda _: seen.append("lockout"), when_changed=lambda s: s.lockout)
    hooks.register("logging", lambda _: seen.append("logging"), when_changed=lambda s: s.logging)
    hooks.register("always", lambda _: seen.append("always"))

    await hooks.apply(NEW, previous=OLD)

    assert seen == ["lockout", "always"]


async def test_a_refusing_first_hook_stops_every_later_one() -> None:
    seen: list[str] = []
    hooks = ReloadHooks()

    async def database(_: Settings) -> None:
        raise ReloadRejected("database: unreachable")

    hooks.register("database", database)
    hooks.register("lockout", lambda _: seen.append("lockout"))

    with pytest.raises(ReloadRejected):
        await hooks.apply(NEW, previous=OLD)
    assert seen == []


def test_a_name_is_registered_once() -> None:
    hooks = ReloadHooks()
    hooks.register("lockout", lambda _: None)
    with pytest.raises(ValueError, match="lockout"):
        hooks.register("lockout", lambda _: None)
