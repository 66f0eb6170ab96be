"""The invalidation bus over a real redis-server of the test's own (ADR 0430): two buses
stand for two worker processes. What is proved is ordering, never timing: the publisher's own
subscribers have forgotten the key when ``publish`` returns; a lost subscription (CLIENT
KILL, a paused server, a stopped server) makes the bus unhealthy and resets the caches before
anything else can be served, a fill that straddled it is refused, and once the subscription
is confirmed again invalidations flow again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from auth_service.security.invalidation import DEAD_AFTER_SECONDS, InvalidationBus, RedisBus
from tests.support.redis_server import RedisServer, redis_server
from tests.support.wait import async_wait_for

pytestmark = [pytest.mark.redis]


class Cache:
    """What a per-worker cache does with the bus: a dict, emptied on reset."""

    def __init__(self, bus: InvalidationBus, topic: str = "things") -> None:
        self.entries: dict[str, str] = {}
        self.forgotten: list[str] = []
        self.resets = 0
        bus.subscribe(topic, self.forget, self.reset)

    def forget(self, key: str) -> None:
        self.forgotten.append(key)
        self.entries.pop(key, None)

    def reset(self) -> None:
        self.resets += 1
        self.entries.clear()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture
async def clients(own_redis: RedisServer) -> AsyncIterator[tuple[Redis, Redis]]:
    a = Redis.from_url(own_redis.url, socket_timeout=2, socket_connect_timeout=2)
    b = Redis.from_url(own_redis.url, socket_timeout=2, socket_connect_timeout=2)
    yield a, b
    await a.aclose()
    await b.aclose()


async def _started(client: Redis) -> RedisBus:
    bus = RedisBus(client, 0)
    await bus.start()
    assert await bus.wait_healthy(10)
    return bus


async def test_publish_forgets_here_before_returning_and_reaches_the_other_process(
    clients: tuple[Redis, Redis],
) -> None:
    a_client, b_client = clients
    a, b = RedisBus(a_client, 0), RedisBus(b_client, 0)
    here, there = Cache(a), Cache(b)
    other_topic = Cache(b, "other")
    await a.start()
    await b.start()
    try:
        assert await a.wait_healthy(10)
        assert await b.wait_healthy(10)
        here.entries["k1"] = there.entries["k1"] = "cached"
        await a.publish("things", "k1")
        assert "k1" not in here.entries  # synchronously, before publish returned
        await async_wait_for(lambda: "k1" in there.forgotten, what="delivery to the other bus")
        assert "k1" not in there.entries
        assert other_topic.forgotten == []  # topics are separate
        # In publishing order.
        for i in range(20):
            await a.publish("things", f"n{i}")
        await async_wait_for(lambda: "n19" in there.forgotten, what="the 20th message")
        assert [k for k in there.forgotten if k.startswith("n")] == [f"n{i}" for i in range(20)]
    finally:
        await a.stop()
        await b.stop()
    assert not a.healthy


async def test_a_killed_subscription_falls_back_then_recovers(
    own_redis: RedisServer, clients: tuple[Redis, Redis]
) -> None:
    a_client, b_client = clients
    a = RedisBus(a_client, 0)  # publishes only, like the CLI
    b = await _started(b_client)
    cache = Cache(b)
    try:
        cache.entries["k"] = "cached"
        before = b.fill()
        assert before.valid()
        generation = b.generation
        with own_redis.client() as admin:
            killed = admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        assert killed >= 1
        # Lost: unhealthy, the cache emptied, a fill started before refused.
        await async_wait_for(lambda: cache.resets >= 1, what="reset on the lost subscription")
        assert cache.entries == {}
        assert not before.valid()
        # Back: healthy again on a new generation; the old fill stays refused, a new one is
        # accepted, and invalidations reach the bus again.
        assert await b.wait_healthy(10)
        assert b.generation > generation
        assert not before.valid()
        assert b.fill().valid()
        cache.entries["k2"] = "cached"
        await a.publish("things", "k2")
        await async_wait_for(lambda: "k2" in cache.forgotten, what="delivery after recovery")
        assert "k2" not in cache.entries
    finally:
        await b.stop()


async def test_a_server_that_stops_answering_is_a_lost_subscription(
    own_redis: RedisServer, clients: tuple[Redis, Redis]
) -> None:
    """No closed connection to notice: the keep-alive PING gets no pong."""
    b = await _started(clients[1])
    cache = Cache(b)
    try:
        fill = b.fill()
        pause_ms = int((DEAD_AFTER_SECONDS + 3) * 1000)
        with own_redis.client() as admin:
            admin.execute_command("CLIENT", "PAUSE", str(pause_ms), "ALL")
        await async_wait_for(lambda: not b.healthy, timeout=pause_ms / 1000, what="loss noticed")
        assert cache.resets >= 1
        assert not fill.valid()
        assert await b.wait_healthy(pause_ms / 1000 + 10)
    finally:
        await b.stop()


async def test_a_stopped_server(own_redis: RedisServer, clients: tuple[Redis, Redis]) -> None:
    """Publishing with Redis down does not raise (the write has committed) and still forgets
    locally; subscribers are unhealthy until the server is back."""
    a_client, b_client = clients
    a = RedisBus(a_client, 0)
    mine = Cache(a)
    b = await _started(b_client)
    cache = Cache(b)
    try:
        own_redis.stop()
        await async_wait_for(lambda: not b.healthy, what="loss noticed")
        mine.entries["k"] = "cached"
        await a.publish("things", "k")
        assert mine.forgotten == ["k"]
        assert mine.entries == {}
        own_redis.start()
        assert await b.wait_healthy(15)
        await a.publish("things", "k3")
        await async_wait_for(lambda: "k3" in cache.forgotten, what="delivery after restart")
    finally:
        await b.stop()


async def test_channels_carry_the_redis_database(clients: tuple[Redis, Redis]) -> None:
    """Pub/sub ignores SELECT: a bus of database 1 does not hear database 0. Proved by order:
    each bus hears a later message of its own database, so it would have heard the earlier
    one of the other database first."""
    a_client, b_client = clients
    a, b = RedisBus(a_client, 0), RedisBus(b_client, 1)
    mine, theirs = Cache(a), Cache(b)
    await a.start()
    await b.start()
    try:
        assert await a.wait_healthy(10)
        assert await b.wait_healthy(10)
        assert a.channel("things") != b.channel("things")
        await RedisBus(b_client, 1).publish("things", "x")
        await RedisBus(a_client, 0).publish("things", "y")
        await RedisBus(b_client, 1).publish("things", "z")
        await async_wait_for(lambda: "y" in mine.forgotten, what="own database delivery")
        await async_wait_for(lambda: "z" in theirs.forgotten, what="own database delivery")
        assert mine.forgotten == ["y"]
        assert theirs.forgotten == ["x", "z"]
    finally:
        await a.stop()
        await b.stop()


async def test_the_in_process_bus() -> None:
    """Without Redis nothing reaches another process: never healthy (caches stay off), but
    this process's subscribers still forget at once."""
    bus = InvalidationBus()
    cache = Cache(bus)
    await bus.start()
    assert not bus.healthy
    assert not bus.shared
    assert not bus.fill().valid()
    cache.entries["k"] = "v"
    await bus.publish("things", "k")
    assert cache.entries == {}
    assert cache.forgotten == ["k"]
    alone = InvalidationBus(alone=True)
    assert alone.healthy
    assert alone.fill().valid()
    with pytest.raises(ValueError, match="invalid invalidation topic"):
        bus.subscribe("things*", cache.forget)
    with pytest.raises(ValueError, match="invalid invalidation topic"):
        await bus.publish("", "k")


async def test_a_failing_callback_resets_its_cache() -> None:
    bus = InvalidationBus(alone=True)
    resets: list[int] = []

    def broken(key: str) -> None:
        raise RuntimeError(key)

    bus.subscribe("things", broken, lambda: resets.append(1))
    await bus.publish("things", "k")
    assert resets == [1]
