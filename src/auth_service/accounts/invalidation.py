"""Telling every process that a user or a session changed (ADR 0431).

The bearer path caches, per worker, what ``SessionService.active_identity`` returns: the
session's liveness and the user with their roles (``sessions.identity_cache``). Every write
that changes any of it calls this, after its transaction commits and before it responds;
the calling process forgets at once, the others when the bus delivers (ADR 0430). Here, in
the accounts domain, because the writers are here and in the domains above it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from auth_service.security.invalidation import InvalidationBus

SESSION_TOPIC = "session"
USER_TOPIC = "user"
EVERY_USER = "*"


class IdentityInvalidation:
    """What the writers call, after their transaction commits and before they respond: every
    process's caches forget the session or the user (ADR 0431)."""

    def __init__(self, bus: InvalidationBus) -> None:
        self.bus = bus

    async def sessions_changed(self, session_ids: Iterable[uuid.UUID]) -> None:
        for session_id in session_ids:
            await self.bus.publish(SESSION_TOPIC, str(session_id))

    async def user_changed(self, user_id: uuid.UUID) -> None:
        await self.bus.publish(USER_TOPIC, str(user_id))

    async def every_user_changed(self) -> None:
        await self.bus.publish(USER_TOPIC, EVERY_USER)
