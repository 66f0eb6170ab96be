"""The identity cache's rules, on an in-process bus (ADR 0431): what it serves, how long, and
that a fill overtaken by an invalidation or a lost subscription is never stored."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from auth_service.accounts.identity import Identity, UserStatus
from auth_service.accounts.invalidation import IdentityInvalidation
from auth_service.security.invalidation import InvalidationBus
from auth_service.sessions.identity_cache import IdentityCache

NOW = datetime(2026, 12, 5, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def identity(user_id: uuid.UUID | None = None) -> Identity:
    return Identity(
        user_id or uuid.uuid4(),
        uuid.uuid4(),
        "a@example.com",
        None,
        UserStatus.active,
        None,
        (),
        NOW,
        None,
    )


def filled(cache: IdentityCache, session_id: uuid.UUID, who: Identity) -> bool:
    return cache.store(cache.begin(), session_id, who.id, who, LATER, time.monotonic())


class SwitchBus(InvalidationBus):
    """An in-process bus whose health the test sets (a lost subscription)."""

    up = True

    @property
    def healthy(self) -> bool:
        return self.up


async def test_serves_until_the_session_expires_or_is_invalidated() -> None:
    bus = InvalidationBus(alone=True)
    cache = IdentityCache(bus)
    who, sid = identity(), uuid.uuid4()
    assert cache.get(sid, who.id, NOW) is None
    assert filled(cache, sid, who)
    assert cache.get(sid, who.id, NOW) == who
    assert cache.get(sid, None, NOW) is None  # another subject asked: another key
    assert cache.get(sid, who.id, LATER) is None  # the session's expiry
    assert filled(cache, sid, who)
    await IdentityInvalidation(bus).sessions_changed([sid])
    assert cache.get(sid, who.id, NOW) is None
    assert filled(cache, sid, who)
    await IdentityInvalidation(bus).user_changed(who.id)
    assert cache.get(sid, who.id, NOW) is None
    assert filled(cache, sid, who)
    await IdentityInvalidation(bus).every_user_changed()
    assert len(cache) == 0


def test_bounded_age_and_size() -> None:
    bus = InvalidationBus(alone=True)
    cache = IdentityCache(bus, max_entries=3, max_age=0.0)
    who, sid = identity(), uuid.uuid4()
    assert filled(cache, sid, who)
    assert cache.get(sid, who.id, NOW) is None  # older than max_age
    cache = IdentityCache(bus, max_entries=3)
    sessions = [uuid.uuid4() for _ in range(4)]
    for sid in sessions[:3]:
        assert filled(cache, sid, who)
    assert cache.get(sessions[0], who.id, NOW) == who  # now the most recently used
    assert filled(cache, sessions[3], who)
    assert len(cache) == 3
    assert cache.get(sessions[1], who.id, NOW) is None  # the least recently used went
    assert cache.get(sessions[0], who.id, NOW) == who


async def test_a_fill_overtaken_by_an_invalidation_is_not_stored() -> None:
    bus = InvalidationBus(alone=True)
    cache = IdentityCache(bus)
    who, sid = identity(), uuid.uuid4()
    pending = cache.begin()  # the database read starts (the session still live)...
    await IdentityInvalidation(bus).sessions_changed([sid])  # ...the revocation commits
    assert not cache.store(pending, sid, who.id, who, LATER, time.monotonic())
    assert cache.get(sid, who.id, NOW) is None


def test_a_lost_subscription_bypasses_and_empties() -> None:
    bus = SwitchBus()
    cache = IdentityCache(bus)
    who, sid = identity(), uuid.uuid4()
    assert filled(cache, sid, who)
    pending = cache.begin()
    bus.up = False
    assert cache.get(sid, who.id, NOW) is None  # bypassed: read the database
    bus._reset_all()  # what the bus does on a loss
    bus.up = True
    assert len(cache) == 0
    assert not cache.store(pending, sid, who.id, who, LATER, time.monotonic())
    assert filled(cache, sid, who)


def test_off_without_redis() -> None:
    cache = IdentityCache(InvalidationBus())
    who, sid = identity(), uuid.uuid4()
    assert not cache.serving
    assert not filled(cache, sid, who)
    assert cache.get(sid, who.id, NOW) is None
