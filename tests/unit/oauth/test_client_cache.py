"""The client cache's rules (ADR 0761) on the in-process invalidation bus: served only while
the bus is healthy, only for an accepted digest of the same tenant and before the secret's
expiry; a fill that raced an invalidation or a bus reset is not stored."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from auth_service.oauth.client_cache import TOPIC, ClientCache
from auth_service.security.invalidation import InvalidationBus

TENANT = uuid.uuid4()
DIGEST = b"d" * 32


@dataclass(frozen=True)
class Client:
    client_id: str
    tenant_id: uuid.UUID = TENANT


def _filled(cache: ClientCache[Client], client: Client, expires_at: datetime | None = None) -> None:
    pending = cache.begin()
    cache.store(pending, client.tenant_id, client.client_id, DIGEST, client, expires_at)


def test_served_only_for_the_accepted_digest_and_tenant() -> None:
    cache: ClientCache[Client] = ClientCache(InvalidationBus(alone=True))
    client = Client("a")
    assert cache.get(TENANT, "a", DIGEST) is None
    _filled(cache, client)
    assert cache.get(TENANT, "a", DIGEST) is client
    assert cache.get(TENANT, "a", b"x" * 32) is None
    assert cache.get(uuid.uuid4(), "a", DIGEST) is None
    assert cache.get(TENANT, "b", DIGEST) is None


def test_nothing_is_served_or_stored_while_the_bus_is_unhealthy() -> None:
    bus = InvalidationBus()  # in-process: never healthy (other processes write too)
    cache: ClientCache[Client] = ClientCache(bus)
    _filled(cache, Client("a"))
    bus.alone = True
    assert cache.get(TENANT, "a", DIGEST) is None


async def test_a_published_change_forgets_the_client() -> None:
    bus = InvalidationBus(alone=True)
    cache: ClientCache[Client] = ClientCache(bus)
    _filled(cache, Client("a"))
    _filled(cache, Client("b"))
    await cache.changed("a")
    assert cache.get(TENANT, "a", DIGEST) is None
    assert cache.get(TENANT, "b", DIGEST) is not None
    await bus.publish(TOPIC, "b")
    assert cache.get(TENANT, "b", DIGEST) is None


async def test_a_fill_that_raced_a_change_or_a_reset_is_not_stored() -> None:
    bus = InvalidationBus(alone=True)
    cache: ClientCache[Client] = ClientCache(bus)
    pending = cache.begin()  # the database read starts ...
    await cache.changed("other")  # ... any client changes meanwhile ...
    cache.store(pending, TENANT, "a", DIGEST, Client("a"), None)
    assert cache.get(TENANT, "a", DIGEST) is None  # ... and the read is not kept
    pending = cache.begin()
    bus._reset_all()  # the subscription was lost and re-established
    cache.store(pending, TENANT, "a", DIGEST, Client("a"), None)
    assert cache.get(TENANT, "a", DIGEST) is None
    _filled(cache, Client("a"))
    bus._reset_all()
    assert cache.get(TENANT, "a", DIGEST) is None  # a reset empties it


def test_an_entry_ends_with_its_secret() -> None:
    cache: ClientCache[Client] = ClientCache(InvalidationBus(alone=True))
    _filled(cache, Client("a"), expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert cache.get(TENANT, "a", DIGEST) is None
    _filled(cache, Client("b"), expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert cache.get(TENANT, "b", DIGEST) is not None
