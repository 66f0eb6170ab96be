"""Ending sessions: every write that revokes a session is here, one transaction each.

Other domains hold this object through their own protocol (accounts' ``SessionRevoker``),
so they can end a user's sessions without depending on the sessions domain.

Ending a browser session is the one place where what depends on it ends too, whoever asked
(RP-initiated logout, the pages' sign-out, ``DELETE /v1/sessions/{id}``, an admin disabling
the user, a password reset): the OAuth grants made in it that hold no refresh token (granted
without ``offline_access``, OIDC Back-Channel Logout 1.0 section 2.7), and whatever the
``listener`` adds in the same transaction (the oauth domain enqueues its back-channel logout
tokens there, so they are sent if and only if the session really ended).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Update, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.invalidation import IdentityInvalidation
from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.sessions.models import RefreshToken, Session, SessionKind

MAX_REASON_LENGTH = 32


@dataclass(frozen=True)
class EndedSession:
    """A browser session that has just ended."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    reason: str


class SessionEndListener(Protocol):
    """Told, inside the revoking transaction, which browser sessions it ended."""

    async def sessions_ended(self, session: AsyncSession, ended: Sequence[EndedSession]) -> None:
        """Add writes to ``session`` (the revocation's transaction); raise to undo it all."""


class SessionRevoker:
    def __init__(self, db: Database, invalidation: IdentityInvalidation | None = None) -> None:
        self._db = db
        # Every process's identity cache forgets what ended, after the commit and before
        # the revoking call returns (ADR 0431).
        self.invalidation = invalidation
        # Set once when the graph is built (services.py): the oauth domain's back-channel
        # logout. None: nothing beyond the sessions themselves.
        self.listener: SessionEndListener | None = None

    async def revoke_user_sessions(
        self, user_id: uuid.UUID, *, reason: str, keep: uuid.UUID | None = None
    ) -> int:
        """Revoke every live session of a user except ``keep``; returns how many."""
        stmt = update(Session).where(Session.user_id == user_id, Session.revoked_at.is_(None))
        if keep is not None:
            stmt = stmt.where(Session.id != keep)
        return len(await self._end(stmt, reason))

    async def revoke(
        self, session_id: uuid.UUID, *, reason: str, user_id: uuid.UUID | None = None
    ) -> uuid.UUID | None:
        """Revoke one live session (of ``user_id`` when given); the user it belonged to, or
        None when there was no such live session."""
        stmt = update(Session).where(Session.id == session_id, Session.revoked_at.is_(None))
        if user_id is not None:
            stmt = stmt.where(Session.user_id == user_id)
        ended = await self._end(stmt, reason)
        return ended[0][1] if ended else None

    async def _end(self, stmt: Update, reason: str) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Run the revoking UPDATE; end what depended on the browser sessions among the
        rows it ended. The (id, user_id) of every ended row."""
        reason = reason[:MAX_REASON_LENGTH]
        now = utcnow()
        stmt = (
            stmt.values(revoked_at=now, revoked_reason=reason)
            .returning(Session.id, Session.tenant_id, Session.user_id, Session.kind)
            .execution_options(synchronize_session=False)
        )
        async with self._db.transaction() as s:
            rows = (await s.execute(stmt)).all()
            browser = [
                EndedSession(r.id, r.tenant_id, r.user_id, reason)
                for r in rows
                if r.kind == SessionKind.browser.value
            ]
            if browser:
                await s.execute(_online_grants_of([b.id for b in browser], now, reason))
                if self.listener is not None:
                    await self.listener.sessions_ended(s, browser)
        if self.invalidation is not None and rows:
            if len(rows) == 1:
                await self.invalidation.sessions_changed([rows[0].id])
            else:
                for user_id in {r.user_id for r in rows}:
                    await self.invalidation.user_changed(user_id)
        return [(r.id, r.user_id) for r in rows]


def _online_grants_of(browser_ids: list[uuid.UUID], now: object, reason: str) -> Update:
    """The grants of these browser sessions that hold no refresh token: they last only as
    long as the sign-in they came from."""
    has_refresh = select(RefreshToken.id).where(RefreshToken.session_id == Session.id)
    return (
        update(Session)
        .where(
            Session.kind == SessionKind.oauth.value,
            Session.revoked_at.is_(None),
            Session.browser_session_id.in_(browser_ids),
            ~has_refresh.exists(),
        )
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )
