"""Ending sessions: every write that revokes a session is here, one statement each.

Other domains hold this object through their own protocol (accounts' ``SessionRevoker``),
so they can end a user's sessions without depending on the sessions domain.
"""

from __future__ import annotations

import uuid

from sqlalchemy import update

from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.sessions.models import Session

MAX_REASON_LENGTH = 32


class SessionRevoker:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def revoke_user_sessions(
        self, user_id: uuid.UUID, *, reason: str, keep: uuid.UUID | None = None
    ) -> int:
        """Revoke every live session of a user except ``keep``; returns how many."""
        stmt = update(Session).where(Session.user_id == user_id, Session.revoked_at.is_(None))
        if keep is not None:
            stmt = stmt.where(Session.id != keep)
        async with self._db.single() as conn:
            result = await conn.execute(
                stmt.values(revoked_at=utcnow(), revoked_reason=reason[:MAX_REASON_LENGTH])
            )
        return int(result.rowcount)

    async def revoke(
        self, session_id: uuid.UUID, *, reason: str, user_id: uuid.UUID | None = None
    ) -> uuid.UUID | None:
        """Revoke one live session (of ``user_id`` when given); the user it belonged to, or
        None when there was no such live session."""
        stmt = update(Session).where(Session.id == session_id, Session.revoked_at.is_(None))
        if user_id is not None:
            stmt = stmt.where(Session.user_id == user_id)
        stmt = stmt.values(revoked_at=utcnow(), revoked_reason=reason[:MAX_REASON_LENGTH])
        async with self._db.single() as conn:
            return await conn.scalar(stmt.returning(Session.user_id))
