"""The bearer path's per-worker cache of live sessions and their users (ADR 0431).

``fresh_principal`` asks, on every request, whether the token's session is still usable and
its user active, and reads the user with their roles (``SessionService.active_identity``,
one database round trip). This cache holds that answer per session, in this worker only,
and serves it while the invalidation bus (ADR 0430) is healthy:

- keyed by (session id, the subject asked for); only first-party API sessions (the OAuth
  server's grants are revoked elsewhere and never reach ``fresh_principal``'s cache);
- an entry lasts until the first of: the session's absolute expiry, its idle expiry as read
  (``last_used_at`` + the idle lifetime: a refresh since only makes the cache re-read
  early), ``MAX_AGE_SECONDS`` after it was read, an invalidation of its session (topic
  ``session``) or its user (topic ``user``; key ``*``: every user, e.g. a renamed role), or
  a reset of the bus (a lost or re-established subscription);
- bounded: ``MAX_ENTRIES``, least recently used first out;
- negative answers (no such live session) are never cached;
- a fill stores only if no invalidation arrived and the bus stayed healthy while the
  database was read (``begin`` / ``store``): an answer read just before a revocation
  committed, and stored after its invalidation was applied, would otherwise live on.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from auth_service.accounts.identity import Identity
from auth_service.accounts.invalidation import EVERY_USER, SESSION_TOPIC, USER_TOPIC
from auth_service.security.invalidation import Fill, InvalidationBus

MAX_ENTRIES = 10_000
# The backstop for a lost PUBLISH (ADR 0430): nothing is served longer than this after it
# was read, whatever the bus says.
MAX_AGE_SECONDS = 30.0

Key = tuple[uuid.UUID, uuid.UUID | None]


@dataclass(frozen=True)
class _Entry:
    identity: Identity
    usable_until: datetime  # the session's expiry or idle expiry, whichever first
    read_at: float  # time.monotonic()


@dataclass(frozen=True)
class Pending:
    """A fill in progress: the bus generation and the cache's invalidation count at its
    start."""

    fill: Fill
    version: int


class IdentityCache:
    def __init__(
        self,
        bus: InvalidationBus,
        max_entries: int = MAX_ENTRIES,
        max_age: float = MAX_AGE_SECONDS,
    ) -> None:
        self.bus = bus
        self.max_entries = max_entries
        self.max_age = max_age
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._by_session: dict[uuid.UUID, set[Key]] = {}
        self._by_user: dict[uuid.UUID, set[Key]] = {}
        # Every invalidation counts; a fill that saw another count does not store.
        self._version = 0
        bus.subscribe(SESSION_TOPIC, self._forget_session, self.clear)
        bus.subscribe(USER_TOPIC, self._forget_user, self.clear)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def serving(self) -> bool:
        return self.bus.healthy

    def get(
        self, session_id: uuid.UUID, user_id: uuid.UUID | None, now: datetime
    ) -> Identity | None:
        """The cached identity, or None (read the database)."""
        if not self.bus.healthy:
            return None
        key = (session_id, user_id)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry.usable_until or time.monotonic() - entry.read_at >= self.max_age:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.identity

    def begin(self) -> Pending:
        """Before the database read of a fill."""
        return Pending(self.bus.fill(), self._version)

    def store(
        self,
        pending: Pending,
        session_id: uuid.UUID,
        user_id: uuid.UUID | None,
        identity: Identity,
        usable_until: datetime,
        read_at: float,
    ) -> bool:
        """After the read: store unless something was invalidated (or the bus lost) since
        ``begin``. ``read_at``: ``time.monotonic()`` before the read."""
        if not pending.fill.valid() or pending.version != self._version:
            return False
        key = (session_id, user_id)
        self._drop(key)
        self._entries[key] = _Entry(identity, usable_until, read_at)
        self._by_session.setdefault(session_id, set()).add(key)
        self._by_user.setdefault(identity.id, set()).add(key)
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))
        return True

    def clear(self) -> None:
        self._version += 1
        self._entries.clear()
        self._by_session.clear()
        self._by_user.clear()

    def _forget_session(self, key: str) -> None:
        self._forget(self._by_session, key)

    def _forget_user(self, key: str) -> None:
        self._forget(self._by_user, key)

    def _forget(self, index: dict[uuid.UUID, set[Key]], key: str) -> None:
        """Forget the entries under ``key`` in ``index``; everything for ``*`` or a key
        that is no id (fail safe)."""
        self._version += 1
        try:
            at = uuid.UUID(key) if key != EVERY_USER else None
        except ValueError:
            at = None
        if at is None:
            self.clear()
            return
        for k in list(index.get(at, ())):
            self._drop(k)

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        _discard(self._by_session, key[0], key)
        _discard(self._by_user, entry.identity.id, key)


def _discard(index: dict[uuid.UUID, set[Key]], at: uuid.UUID, key: Key) -> None:
    keys = index.get(at)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[at]
