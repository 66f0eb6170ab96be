"""A per-worker cache of authenticated clients: client id and secret digest to the client, so
that client authentication on the token, introspection and revocation endpoints needs no
database round trip while nothing changed (ADR 0761).

Built on the invalidation bus (``security.invalidation``, ADR 0430), and fail safe:

- an entry is served only while ``bus.healthy`` (otherwise the database answers), only for
  the digest of a secret the database accepted (compared in constant time with each digest
  held), and only before the earlier of the secret's ``expires_at`` and ``MAX_AGE_SECONDS``
  after it was read;
- every change of a client (``ClientService``: create, update, secret rotation, delete; the
  admin API, the CLI, dynamic registration and ``realm apply`` all go through it) publishes
  the client id on ``TOPIC`` after its transaction commits and before it returns: every
  worker of every replica forgets the client (this one before ``publish`` returns);
- a fill stores what it read only if no invalidation of any client and no loss of the
  subscription happened while it read (``_epoch`` and ``bus.fill()``): a read that raced a
  change is never stored;
- a wrong secret, an unknown client and a public client are never cached (each failure reads
  the database, as before).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from auth_service.security.invalidation import Fill, InvalidationBus
from auth_service.security.random import constant_time_equals


class _Tenanted(Protocol):
    @property
    def tenant_id(self) -> uuid.UUID: ...


# ``oauth.clients.Client`` (which imports this module).
Client = TypeVar("Client", bound=_Tenanted)

TOPIC = "oauth-client"
# The backstop: an entry is read again from the database at least this often.
MAX_AGE_SECONDS = 60.0
# Bounded memory: past this many clients the cache starts again (a new fill per client).
MAX_CLIENTS = 4096
# Live secrets of one client held at once (a rotation's overlap has two).
MAX_SECRETS = 4


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    until: float  # wall clock (time.time()), as the secrets' expires_at


@dataclass(frozen=True)
class Pending:
    """A fill in progress: what ``store`` needs to know whether the read may be kept."""

    fill: Fill
    epoch: int


class ClientCache(Generic[Client]):
    def __init__(self, bus: InvalidationBus) -> None:
        self._bus = bus
        # client_id -> (the client, its accepted secret digests)
        self._clients: dict[str, tuple[Client, list[_Entry]]] = {}
        self._epoch = 0
        bus.subscribe(TOPIC, self.forget, self.clear)

    @property
    def bus(self) -> InvalidationBus:
        return self._bus

    def get(self, tenant_id: uuid.UUID, client_id: str, digest: bytes) -> Client | None:
        """The client, if ``digest`` is one of its accepted secrets' and the entry may serve."""
        if not self._bus.healthy:
            return None
        held = self._clients.get(client_id)
        if held is None:
            return None
        client, entries = held
        if client.tenant_id != tenant_id:
            return None
        now = time.time()
        found = False
        for entry in entries:  # every digest compared: no early exit
            found |= constant_time_equals(entry.digest, digest) and entry.until > now
        return client if found else None

    def begin(self) -> Pending:
        """Before the database read of a fill."""
        return Pending(self._bus.fill(), self._epoch)

    def store(
        self,
        pending: Pending,
        tenant_id: uuid.UUID,
        client_id: str,
        digest: bytes,
        client: Client,
        expires_at: datetime | None,
    ) -> None:
        """Keep what the database accepted, unless anything was invalidated meanwhile."""
        if self._epoch != pending.epoch or not pending.fill.valid():
            return
        until = time.time() + MAX_AGE_SECONDS
        if expires_at is not None:
            until = min(until, expires_at.timestamp())
        held = self._clients.get(client_id)
        entries = []
        if held is not None and held[0].tenant_id == tenant_id:
            entries = [e for e in held[1] if e.digest != digest]
        elif held is None and len(self._clients) >= MAX_CLIENTS:
            self._clients.clear()
        entries.append(_Entry(digest, until))
        self._clients[client_id] = (client, entries[-MAX_SECRETS:])

    def forget(self, client_id: str) -> None:
        """Bus callback: a client changed (any process)."""
        self._epoch += 1
        self._clients.pop(client_id, None)

    def clear(self) -> None:
        """Bus callback: the subscription was lost or re-established."""
        self._epoch += 1
        self._clients.clear()

    async def changed(self, client_id: str) -> None:
        """After a client's change committed: every worker forgets it."""
        await self._bus.publish(TOPIC, client_id)
