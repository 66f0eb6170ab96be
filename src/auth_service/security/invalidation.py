"""A per-worker invalidation bus: tell every worker of every replica to forget a key (ADR 0430).

A per-worker cache of database state may serve from memory only while every write that
changes that state reaches it. The writer, after its transaction commits and before its
response, calls ``await bus.publish(topic, key)``; every process that ``subscribe``\\ d to
``topic`` has its callback called with ``key``: the publishing process synchronously, before
``publish`` returns, the others as soon as Redis delivers the message (Redis pub/sub, one
subscription connection per process).

Caches hold to three rules (``InvalidationBus`` gives them what they need):

- serve from memory only while ``bus.healthy``; otherwise read the database. ``healthy`` is
  False before the subscription is confirmed, from the moment it is lost (a closed
  connection, or no answer to the keep-alive PING within ``DEAD_AFTER_SECONDS``) until it is
  confirmed again, and always on the in-process bus of a deployment without Redis (the CLI,
  ``jobs work`` or another replica write to the same database and could not reach this
  process's memory);
- when the subscription is lost or re-established the bus calls every ``on_reset``: a cache
  empties itself (what it holds may have missed invalidations meanwhile);
- a fill (read the database, then store) records ``bus.generation`` before its read and
  stores only if it is unchanged and the bus healthy afterwards (``Fill``): a read that
  straddled a lost subscription is never stored.

Redis pub/sub channels are not per database: the channel names carry the Redis database
number of the service's URL (``auth-service:<db>:inv:<topic>``), so two deployments on one
Redis server in different databases do not hear each other (and share nothing else either).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from redis.asyncio import Redis

from auth_service.observability import metrics

log = structlog.get_logger(__name__)

# Keep-alive on the subscription connection: a PING every PING_SECONDS; no message and no
# pong for DEAD_AFTER_SECONDS means the connection is lost (a blackholed network closes
# nothing). Caches read the database from then on.
PING_SECONDS = 0.5
DEAD_AFTER_SECONDS = 1.5
# Reconnect attempts back off from the first to the last.
RECONNECT_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0)
# A failed PUBLISH is tried again this many times, RETRY_PAUSE_SECONDS apart.
PUBLISH_ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 0.05

KeyCallback = Callable[[str], None]
ResetCallback = Callable[[], None]


@dataclass
class _Subscriber:
    on_key: KeyCallback
    on_reset: ResetCallback | None


@dataclass
class InvalidationBus:
    """The in-process bus: ``publish`` reaches this process's subscribers only, so it is never
    ``healthy`` (unless ``alone``: a test, or a process known to be the only writer)."""

    alone: bool = False
    generation: int = 0
    _topics: dict[str, list[_Subscriber]] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """May a per-worker cache serve from memory now (every invalidation reaches it)?"""
        return self.alone

    @property
    def shared(self) -> bool:
        """Does ``publish`` reach other processes?"""
        return False

    def subscribe(
        self, topic: str, on_key: KeyCallback, on_reset: ResetCallback | None = None
    ) -> None:
        """Call ``on_key(key)`` for each key published on ``topic`` (by any process), and
        ``on_reset()`` when the subscription is lost or re-established. Callbacks run on
        the event loop and must be quick and not block (a dictionary pop)."""
        _check_topic(topic)
        self._topics.setdefault(topic, []).append(_Subscriber(on_key, on_reset))

    async def publish(self, topic: str, key: str) -> None:
        """Forget ``key`` of ``topic`` everywhere; this process's subscribers before this
        returns."""
        _check_topic(topic)
        self._deliver(topic, key)

    async def start(self) -> None:
        """Subscribe (a serving process; the CLI only publishes)."""

    async def stop(self) -> None:
        """Unsubscribe."""

    def fill(self) -> Fill:
        """Start a fill: read, then ``fill.valid()`` says whether the result may be stored."""
        return Fill(self, self.generation)

    def _deliver(self, topic: str, key: str) -> None:
        for sub in self._topics.get(topic, ()):
            try:
                sub.on_key(key)
            except Exception as exc:  # a cache that cannot forget one key forgets all
                log.error("invalidation_callback_failed", topic=topic, error=type(exc).__name__)
                if sub.on_reset is not None:
                    sub.on_reset()

    def _reset_all(self) -> None:
        self.generation += 1
        for subs in self._topics.values():
            for sub in subs:
                if sub.on_reset is not None:
                    sub.on_reset()


@dataclass(frozen=True)
class Fill:
    bus: InvalidationBus
    generation: int

    def valid(self) -> bool:
        """May what was read since ``bus.fill()`` be stored? Only if the subscription was
        healthy throughout (no reset since, and healthy now)."""
        return self.bus.healthy and self.bus.generation == self.generation


class RedisBus(InvalidationBus):
    """Redis pub/sub: one subscription connection per process (``start``), PUBLISH through
    the service's client."""

    def __init__(self, client: Redis, redis_db: int) -> None:
        super().__init__()
        self._client = client
        self._prefix = f"auth-service:{redis_db}:inv:"
        self._healthy = False
        self._task: asyncio.Task[None] | None = None
        # Set each time a subscription is confirmed (tests and start-up wait on it).
        self._up = asyncio.Event()
        self._was_up = False

    @property
    def healthy(self) -> bool:
        return self._healthy

    @property
    def shared(self) -> bool:
        return True

    def channel(self, topic: str) -> str:
        return self._prefix + topic

    async def publish(self, topic: str, key: str) -> None:
        """This process's subscribers first, then PUBLISH, returning once Redis acknowledged
        it. If Redis cannot be reached after ``PUBLISH_ATTEMPTS`` the error is logged and
        counted, not raised: the write has committed (failing the request would misreport
        it), the other processes' subscriptions to the same Redis are then most likely lost
        too (they read the database), and every cache entry has a bounded age (ADR 0430)."""
        _check_topic(topic)
        self._deliver(topic, key)
        channel = self.channel(topic)
        for attempt in range(PUBLISH_ATTEMPTS):
            try:
                await self._client.publish(channel, key)
                return
            except Exception as exc:  # any failure of the store: logged below
                metrics.REDIS_ERRORS.inc()
                if attempt + 1 == PUBLISH_ATTEMPTS:
                    log.error("invalidation_not_published", topic=topic, error=type(exc).__name__)
                    return
                await asyncio.sleep(RETRY_PAUSE_SECONDS)

    async def start(self) -> None:
        """Start subscribing; waits (up to ``DEAD_AFTER_SECONDS``) for the first
        confirmation, and serves meanwhile anyway (caches read the database until then)."""
        if self._task is not None:
            return
        self._task = asyncio.create_task(self._run(), name="invalidation-bus")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), DEAD_AFTER_SECONDS)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._lost(None)

    async def wait_healthy(self, within: float) -> bool:
        """Wait until the subscription is confirmed (tests)."""
        if self._healthy:
            return True
        self._up.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), within)
        return self._healthy

    async def _run(self) -> None:
        failures = 0
        while True:
            self._was_up = False
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a lost connection: reconnect below
                self._lost(exc)
            if self._was_up:
                failures = 0
            pause = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
            failures += 1
            await asyncio.sleep(pause)

    async def _listen(self) -> None:
        pubsub = self._client.pubsub()
        try:
            await pubsub.psubscribe(self._prefix + "*")
            seen = pinged = time.monotonic()
            while True:
                message = await pubsub.get_message(timeout=PING_SECONDS)
                now = time.monotonic()
                if message is not None:
                    seen = now
                    self._handle(message)
                elif now - seen > DEAD_AFTER_SECONDS:
                    raise ConnectionError("the subscription connection stopped answering")
                if now - pinged >= PING_SECONDS:
                    pinged = now
                    await pubsub.ping()
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _handle(self, message: dict[str, object]) -> None:
        kind = message.get("type")
        if kind == "pmessage":
            channel = _text(message.get("channel"))
            if channel.startswith(self._prefix):
                self._deliver(channel[len(self._prefix) :], _text(message.get("data")))
        elif kind == "psubscribe":
            self._confirmed()

    def _confirmed(self) -> None:
        # Whatever was cached before (while unhealthy nothing is stored, but a fill may have
        # started before the loss) is dropped, and fills started before now are refused.
        self._reset_all()
        self._healthy = True
        self._was_up = True
        metrics.INVALIDATION_BUS_UP.set(1)
        self._up.set()
        log.info("invalidation_bus_subscribed")

    def _lost(self, exc: Exception | None) -> None:
        was = self._healthy
        self._healthy = False
        self._reset_all()
        metrics.INVALIDATION_BUS_UP.set(0)
        if was and exc is not None:
            metrics.REDIS_ERRORS.inc()
            log.warning("invalidation_bus_lost", error=type(exc).__name__)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _check_topic(topic: str) -> None:
    if not topic or any(c in topic for c in "*?[]\\"):
        raise ValueError(f"invalid invalidation topic {topic!r}")
