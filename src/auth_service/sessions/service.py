"""Sessions and refresh tokens: login, rotation with reuse detection, revocation.

Refresh tokens follow the rotation pattern of OAuth 2.0 Security BCP (RFC 9700, section
4.14.2): every refresh spends the presented token and returns a new one; presenting a spent
token again means it leaked, so the whole session is revoked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, select, update

from auth_service.accounts.service import AccountService, Identity
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
from auth_service.security.ratelimit import RateLimited, RateLimiter
from auth_service.sessions.errors import InvalidRefreshToken, RefreshTokenReused, SessionNotFound
from auth_service.sessions.models import RefreshToken, Session

log = structlog.get_logger(__name__)

MAX_REFRESH_TOKEN_LENGTH = 256


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
        accounts: AccountService,
        access_tokens: AccessTokenService,
        limiter: RateLimiter,
        audit: AuditService,
    ) -> None:
        self._db = db
        self._settings = settings
        self._accounts = accounts
        self._access = access_tokens
        self._limiter = limiter
        self._audit = audit

    def apply_settings(self, settings: TokenSettings) -> None:
        """Hot reload: refresh lifetimes and reuse grace apply to the next exchange."""
        self._settings = settings

    async def login(self, email: str, password: str, ctx: RequestContext) -> TokenPair:
        """Authenticate and open a session. Errors come from AccountService.authenticate."""
        try:
            identity = await self._accounts.authenticate(email, password, ctx)
        except RateLimited:
            metrics.LOGINS.labels("rate_limited").inc()
            raise
        except HashingOverloaded:
            metrics.LOGINS.labels("shed").inc()
            raise
        now = utcnow()
        session = Session(
            id=uuid.uuid4(),
            tenant_id=identity.tenant_id,
            user_id=identity.id,
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(seconds=self._settings.refresh_absolute_ttl_seconds),
            ip=ctx.ip,
            user_agent=(ctx.user_agent or "")[:512] or None,
        )
        refresh = new_token()
        async with self._db.transaction() as s:
            s.add(session)
            await s.flush()  # no ORM relationship orders the two inserts for us
            s.add(self._token_row(session, refresh))
        access = await self._access.issue(
            identity.id, session.id, identity.tenant_id, list(identity.roles)
        )
        metrics.LOGINS.labels("success").inc()
        await self._audit.record(
            events.LOGIN_SUCCEEDED,
            ctx.with_actor(identity.id),
            subject=identity.id,
            details={"session_id": str(session.id)},
        )
        return TokenPair(access.token, access.expires_in, refresh, session.id)

    @staticmethod
    def _token_row(session: Session, token: str) -> RefreshToken:
        return RefreshToken(
            id=uuid.uuid4(),
            tenant_id=session.tenant_id,
            session_id=session.id,
            token_hash=token_digest(token),
            created_at=utcnow(),
        )

    def _usable(self, session: Session, now: datetime) -> bool:
        idle = timedelta(seconds=self._settings.refresh_idle_ttl_seconds)
        return (
            session.revoked_at is None
            and session.expires_at > now
            and session.last_used_at + idle > now
        )

    async def refresh(self, refresh_token: str, ctx: RequestContext) -> TokenPair:
        """Exchange a refresh token for a new pair, spending it.

        Exactly one of several concurrent exchanges of one token wins: the spend is a single
        conditional UPDATE. A token spent earlier than the reuse grace window revokes the
        session (RefreshTokenReused).
        """
        try:
            await self._limiter.hit("ip.refresh", ctx.ip or "unknown")
        except RateLimited:
            metrics.REFRESHES.labels("rate_limited").inc()
            raise
        if not refresh_token or len(refresh_token) > MAX_REFRESH_TOKEN_LENGTH:
            metrics.REFRESHES.labels("invalid").inc()
            raise InvalidRefreshToken
        digest = token_digest(refresh_token)
        now = utcnow()
        result = "success"
        user_id: uuid.UUID | None = None
        reused_session: uuid.UUID | None = None
        async with self._db.transaction() as s:
            session_id = await s.scalar(
                update(RefreshToken)
                .where(RefreshToken.token_hash == digest, RefreshToken.used_at.is_(None))
                .values(used_at=now)
                .returning(RefreshToken.session_id)
            )
            if session_id is None:
                spent = (
                    await s.execute(
                        select(RefreshToken.session_id, RefreshToken.used_at).where(
                            RefreshToken.token_hash == digest
                        )
                    )
                ).first()
                if spent is None:
                    metrics.REFRESHES.labels("invalid").inc()
                    raise InvalidRefreshToken
                grace = timedelta(seconds=self._settings.refresh_reuse_grace_seconds)
                if grace and spent.used_at is not None and now - spent.used_at <= grace:
                    session_id = spent.session_id
                    result = "grace"
                else:
                    reused_session = spent.session_id
                    session_id = None
            if session_id is not None:
                # One conditional UPDATE checks that the session is usable (see _usable) and
                # locks its row as SELECT ... FOR UPDATE did, in one round trip instead of two.
                idle = timedelta(seconds=self._settings.refresh_idle_ttl_seconds)
                live = (
                    await s.execute(
                        update(Session)
                        .where(
                            Session.id == session_id,
                            Session.revoked_at.is_(None),
                            Session.expires_at > now,
                            Session.last_used_at > now - idle,
                        )
                        .values(last_used_at=now)
                        .returning(Session.user_id, Session.tenant_id)
                    )
                ).first()
                if live is None:
                    metrics.REFRESHES.labels("expired").inc()
                    raise InvalidRefreshToken
                user_id = live.user_id
                new_refresh = new_token()
                s.add(
                    RefreshToken(
                        id=uuid.uuid4(),
                        tenant_id=live.tenant_id,
                        session_id=session_id,
                        token_hash=token_digest(new_refresh),
                        created_at=now,
                    )
                )
        if reused_session is not None:
            await self._on_reuse(reused_session, ctx)
            raise RefreshTokenReused
        assert session_id is not None
        assert user_id is not None
        # Read outside the transaction: SQLite serialises connections, and roles or status
        # may have changed since login, so they are re-read on every refresh.
        identity = await self._accounts.identity(user_id)
        if identity is None or not identity.active:
            await self.revoke_user_sessions(user_id, reason="user_inactive")
            metrics.REFRESHES.labels("invalid").inc()
            raise InvalidRefreshToken
        access = await self._access.issue(
            identity.id, session_id, identity.tenant_id, list(identity.roles)
        )
        metrics.REFRESHES.labels(result).inc()
        return TokenPair(access.token, access.expires_in, new_refresh, session_id)

    async def _on_reuse(self, session_id: uuid.UUID, ctx: RequestContext) -> None:
        async with self._db.transaction() as s:
            session = await s.get(Session, session_id)
            user_id = session.user_id if session else None
            await s.execute(
                update(Session)
                .where(Session.id == session_id, Session.revoked_at.is_(None))
                .values(revoked_at=utcnow(), revoked_reason="refresh_reuse")
            )
        metrics.REFRESHES.labels("reuse_detected").inc()
        log.warning("refresh_token_reuse", session_id=str(session_id))
        await self._audit.record(
            events.REFRESH_REUSE_DETECTED,
            ctx,
            outcome="denied",
            subject=user_id,
            details={"session_id": str(session_id)},
        )

    async def logout(self, refresh_token: str, ctx: RequestContext) -> None:
        """Revoke the session a refresh token belongs to (idempotent for spent tokens)."""
        if not refresh_token or len(refresh_token) > MAX_REFRESH_TOKEN_LENGTH:
            raise InvalidRefreshToken
        async with self._db.transaction() as s:
            row = (
                await s.execute(
                    select(Session.id, Session.user_id, Session.revoked_at)
                    .join(RefreshToken, RefreshToken.session_id == Session.id)
                    .where(RefreshToken.token_hash == token_digest(refresh_token))
                )
            ).first()
            if row is None:
                raise InvalidRefreshToken
            if row.revoked_at is None:
                await s.execute(
                    update(Session)
                    .where(Session.id == row.id)
                    .values(revoked_at=utcnow(), revoked_reason="logout")
                )
        metrics.LOGOUTS.inc()
        await self._audit.record(
            events.SESSION_LOGGED_OUT,
            ctx.with_actor(row.user_id),
            subject=row.user_id,
            details={"session_id": str(row.id)},
        )

    async def ensure_active(self, session_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Freshness check for routes that must not trust a revoked session's access token."""
        now = utcnow()
        async with self._db.single() as conn:
            row = (
                await conn.execute(
                    select(
                        Session.user_id,
                        Session.revoked_at,
                        Session.expires_at,
                        Session.last_used_at,
                    ).where(Session.id == session_id)
                )
            ).first()
        # _usable reads only these three columns; a Row has them as attributes.
        usable = row is not None and self._usable(row, now)  # type: ignore[arg-type]
        if row is None or row.user_id != user_id or not usable:
            raise SessionNotFound

    async def list_sessions(self, user_id: uuid.UUID) -> list[SessionInfo]:
        now = utcnow()
        async with self._db.sessionmaker() as s:
            rows = (
                await s.scalars(
                    select(Session)
                    .where(Session.user_id == user_id, Session.revoked_at.is_(None))
                    .order_by(Session.created_at.desc())
                )
            ).all()
        return [
            SessionInfo(r.id, r.created_at, r.last_used_at, r.expires_at, r.ip, r.user_agent)
            for r in rows
            if self._usable(r, now)
        ]

    async def revoke_session(
        self, user_id: uuid.UUID, session_id: uuid.UUID, ctx: RequestContext
    ) -> None:
        async with self._db.transaction() as s:
            result = await s.execute(
                update(Session)
                .where(
                    Session.id == session_id,
                    Session.user_id == user_id,
                    Session.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow(), revoked_reason="user")
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise SessionNotFound
        await self._audit.record(
            events.SESSION_REVOKED, ctx, subject=user_id, details={"session_id": str(session_id)}
        )

    async def revoke_user_sessions(
        self, user_id: uuid.UUID, *, reason: str, keep: uuid.UUID | None = None
    ) -> int:
        """Revoke every live session of a user except ``keep``; returns how many."""
        stmt = update(Session).where(Session.user_id == user_id, Session.revoked_at.is_(None))
        if keep is not None:
            stmt = stmt.where(Session.id != keep)
        async with self._db.transaction() as s:
            result = await s.execute(stmt.values(revoked_at=utcnow(), revoked_reason=reason[:32]))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def count_active(self) -> int:
        now = utcnow()
        async with self._db.sessionmaker() as s:
            count = await s.scalar(
                select(func.count())
                .select_from(Session)
                .where(Session.revoked_at.is_(None), Session.expires_at > now)
            )
        return int(count or 0)


__all__ = ["Identity", "SessionInfo", "SessionService", "TokenPair"]
