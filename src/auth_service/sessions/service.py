"""Sessions: sign-in opens one, refresh rotates its tokens, logout and revocation end it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import bindparam, func, insert, select

from auth_service.accounts.credentials import Credentials
from auth_service.accounts.identity import (
    Identity,
    IdentityReader,
    UserStatus,
    identity_from_rows,
    identity_select,
)
from auth_service.accounts.models import User
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.config.settings import TokenSettings
from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.keys.tokens import AccessTokenService
from auth_service.observability import metrics
from auth_service.security.passwords import HashingOverloaded
from auth_service.security.random import new_token, token_digest
from auth_service.security.ratelimit import Limiter, RateLimited, RateLimiter
from auth_service.sessions.errors import InvalidRefreshToken, RefreshTokenReused, SessionNotFound
from auth_service.sessions.models import RefreshToken, Session, session_usable
from auth_service.sessions.refresh import RefreshExchange, Reused
from auth_service.sessions.revocation import SessionRevoker

log = structlog.get_logger(__name__)

MAX_REFRESH_TOKEN_LENGTH = 256

# The freshness check of bearer-authenticated routes and the user it returns, in ONE
# statement: the session must exist, belong to the token's subject and be usable
# (``session_usable``), and the user must be active. Read on every request, never cached, so
# a revocation or a disabled account is refused from the next request on.
_ACTIVE_IDENTITY = (
    identity_select()
    .join(Session, Session.user_id == User.id)
    .where(
        Session.id == bindparam("session_id"),
        Session.user_id == bindparam("user_id"),
        User.status == UserStatus.active.value,
        session_usable(bindparam("now"), bindparam("idle_cutoff")),
    )
)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    session_id: uuid.UUID


@dataclass(frozen=True)
class SessionInfo:
    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None


class SessionService:
    def __init__(
        self,
        db: Database,
        settings: TokenSettings,
        credentials: Credentials,
        identities: IdentityReader,
        access_tokens: AccessTokenService,
        limiter: RateLimiter,
        audit: AuditService,
        revoker: SessionRevoker,
    ) -> None:
        self._db = db
        self._settings = settings
        self._credentials = credentials
        self._access = access_tokens
        self._limiter = limiter
        self._audit = audit
        self._revoker = revoker
        self._exchange = RefreshExchange(db, settings, identities)

    def apply_settings(self, settings: TokenSettings) -> None:
        """Hot reload: refresh lifetimes and reuse grace apply to the next exchange."""
        self._settings = settings
        self._exchange.settings = settings

    def _idle_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self._settings.refresh_idle_ttl_seconds)

    async def login(self, email: str, password: str, ctx: RequestContext) -> TokenPair:
        """Authenticate and open a session. Errors come from Credentials.verify_login.

        After the user lookup of the credential check, every write of a successful login
        (last_login_at, the session, its first refresh token, the audit row) is one atomic
        statement: one round trip on PostgreSQL (Database.write_together).
        """
        try:
            verified = await self._credentials.verify_login(email, password, ctx)
        except RateLimited:
            metrics.LOGINS.labels("rate_limited").inc()
            raise
        except HashingOverloaded:
            metrics.LOGINS.labels("shed").inc()
            raise
        identity = verified.identity
        now = utcnow()
        session_id = uuid.uuid4()
        refresh = new_token()
        audit = self._audit.prepare(
            events.LOGIN_SUCCEEDED,
            ctx.with_actor(identity.id),
            subject=identity.id,
            details={"session_id": str(session_id)},
        )
        await self._db.write_together(
            verified.record,
            insert(Session).values(
                id=session_id,
                tenant_id=identity.tenant_id,
                user_id=identity.id,
                created_at=now,
                last_used_at=now,
                expires_at=now + timedelta(seconds=self._settings.refresh_absolute_ttl_seconds),
                ip=ctx.ip,
                user_agent=(ctx.user_agent or "")[:512] or None,
            ),
            # Only the SHA-256 of the token is stored.
            insert(RefreshToken).values(
                id=uuid.uuid4(),
                tenant_id=identity.tenant_id,
                session_id=session_id,
                token_hash=token_digest(refresh),
                created_at=now,
            ),
            audit.insert(),
        )
        access = await self._access.issue(
            identity.id, session_id, identity.tenant_id, list(identity.roles)
        )
        metrics.LOGINS.labels("success").inc()
        self._audit.emit(audit)
        return TokenPair(access.token, access.expires_in, refresh, session_id)

    async def refresh(self, refresh_token: str, ctx: RequestContext) -> TokenPair:
        """Exchange a refresh token for a new pair, spending it (sessions.refresh).

        A token spent earlier than the reuse grace window revokes the session
        (RefreshTokenReused). Raises RateLimited, InvalidRefreshToken or RefreshTokenReused.
        """
        try:
            await self._limiter.hit(Limiter.ip_refresh, ctx.ip or "unknown")
        except RateLimited:
            metrics.REFRESHES.labels("rate_limited").inc()
            raise
        if not refresh_token or len(refresh_token) > MAX_REFRESH_TOKEN_LENGTH:
            metrics.REFRESHES.labels("invalid").inc()
            raise InvalidRefreshToken
        outcome = await self._exchange.exchange(refresh_token, utcnow())
        if isinstance(outcome, Reused):
            await self._on_reuse(outcome.session_id, ctx)
            raise RefreshTokenReused
        # Roles or status may have changed since login: they were read with the exchange.
        identity = outcome.identity
        if identity is None or not identity.active:
            await self._revoker.revoke_user_sessions(outcome.user_id, reason="user_inactive")
            metrics.REFRESHES.labels("invalid").inc()
            raise InvalidRefreshToken
        access = await self._access.issue(
            identity.id, outcome.session_id, identity.tenant_id, list(identity.roles)
        )
        metrics.REFRESHES.labels(outcome.result).inc()
        return TokenPair(access.token, access.expires_in, outcome.refresh_token, outcome.session_id)

    async def _on_reuse(self, session_id: uuid.UUID, ctx: RequestContext) -> None:
        owner = await self._revoker.revoke(session_id, reason="refresh_reuse")
        if owner is None:  # revoked already (a concurrent reuse); still audit whose it was
            async with self._db.single() as conn:
                owner = await conn.scalar(select(Session.user_id).where(Session.id == session_id))
        metrics.REFRESHES.labels("reuse_detected").inc()
        log.warning("refresh_token_reuse", session_id=str(session_id))
        await self._audit.record(
            events.REFRESH_REUSE_DETECTED,
            ctx,
            outcome="denied",
            subject=owner,
            details={"session_id": str(session_id)},
        )

    async def logout(self, refresh_token: str, ctx: RequestContext) -> None:
        """Revoke the session a refresh token belongs to (idempotent for spent tokens and
        ended sessions). Raises InvalidRefreshToken for a token we never issued."""
        if not refresh_token or len(refresh_token) > MAX_REFRESH_TOKEN_LENGTH:
            raise InvalidRefreshToken
        async with self._db.single() as conn:
            row = (
                await conn.execute(
                    select(Session.id, Session.user_id)
                    .join(RefreshToken, RefreshToken.session_id == Session.id)
                    .where(RefreshToken.token_hash == token_digest(refresh_token))
                )
            ).first()
        if row is None:
            raise InvalidRefreshToken
        await self._revoker.revoke(row.id, reason="logout")
        metrics.LOGOUTS.inc()
        await self._audit.record(
            events.SESSION_LOGGED_OUT,
            ctx.with_actor(row.user_id),
            subject=row.user_id,
            details={"session_id": str(row.id)},
        )

    async def active_identity(self, session_id: uuid.UUID, user_id: uuid.UUID) -> Identity:
        """Freshness check for routes that must not trust a revoked session's access token.

        The session must be usable and belong to ``user_id``, and the user must be active;
        returns the user, read in the same statement (one round trip). Raises SessionNotFound.
        """
        now = utcnow()
        async with self._db.single() as conn:
            rows = (
                await conn.execute(
                    _ACTIVE_IDENTITY,
                    {
                        "session_id": session_id,
                        "user_id": user_id,
                        "now": now,
                        "idle_cutoff": self._idle_cutoff(now),
                    },
                )
            ).all()
        identity = identity_from_rows(rows)
        if identity is None:
            raise SessionNotFound
        return identity

    async def list_sessions(self, user_id: uuid.UUID) -> list[SessionInfo]:
        """The user's usable sessions, newest first."""
        now = utcnow()
        async with self._db.single() as conn:
            rows = (
                await conn.execute(
                    select(
                        Session.id,
                        Session.created_at,
                        Session.last_used_at,
                        Session.expires_at,
                        Session.ip,
                        Session.user_agent,
                    )
                    .where(Session.user_id == user_id, session_usable(now, self._idle_cutoff(now)))
                    .order_by(Session.created_at.desc())
                )
            ).all()
        return [SessionInfo(*row) for row in rows]

    async def revoke_session(
        self, user_id: uuid.UUID, session_id: uuid.UUID, ctx: RequestContext
    ) -> None:
        """End one of the user's own sessions. Raises SessionNotFound."""
        if await self._revoker.revoke(session_id, reason="user", user_id=user_id) is None:
            raise SessionNotFound
        await self._audit.record(
            events.SESSION_REVOKED, ctx, subject=user_id, details={"session_id": str(session_id)}
        )

    async def count_active(self) -> int:
        """Usable sessions of every user: the same rule as ``list_sessions``."""
        now = utcnow()
        async with self._db.single() as conn:
            count = await conn.scalar(
                select(func.count())
                .select_from(Session)
                .where(session_usable(now, self._idle_cutoff(now)))
            )
        return int(count or 0)


__all__ = ["Identity", "SessionInfo", "SessionService", "TokenPair"]
