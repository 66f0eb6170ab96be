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
from sqlalchemy import Boolean, LargeBinary, Uuid, bindparam, func, insert, select, text, update

from auth_service.accounts.models import User
from auth_service.accounts.service import (
    AccountService,
    Identity,
    identity_from_rows,
    identity_select,
)
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.config.settings import TokenSettings
from auth_service.db.base import UTCDateTime, utcnow
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

# The freshness check of bearer-authenticated routes and the user it returns, in ONE
# statement: the session must exist, belong to the token's subject and be usable (not revoked,
# before its absolute expiry, used within the idle lifetime: the conditions of
# SessionService._usable), and the user must be active. Read on every request, never cached,
# so a revocation or a disabled account is refused from the next request on.
_ACTIVE_IDENTITY = (
    identity_select()
    .join(Session, Session.user_id == User.id)
    .where(
        Session.id == bindparam("session_id"),
        Session.user_id == bindparam("user_id"),
        User.status == "active",
        Session.revoked_at.is_(None),
        Session.expires_at > bindparam("now"),
        Session.last_used_at > bindparam("idle_cutoff"),
    )
)

# Refresh on PostgreSQL: ONE statement in autocommit (one round trip) with the decisions of
# the portable path (SessionService._exchange_in_transaction), classified in Python from the
# row it returns. Every sub-statement sees the statement's snapshot; the UPDATEs lock their
# row, and when a concurrent transaction changed it first PostgreSQL re-checks the UPDATE's
# conditions against the committed row before writing (READ COMMITTED).
# - presented: the presented token, by its SHA-256 (unique index).
# - live: the session row is locked and its last_used_at moved, only if the token may be
#   exchanged (unspent, or spent within the reuse grace window when one is set) and the
#   session is usable (same conditions as _usable). Locking the session first serialises
#   every exchange of one session's tokens.
# - spent: the token is spent only if still unspent (used_at IS NULL) and its session is
#   live. Of concurrent exchanges of one token exactly one matches: the others wait on the
#   row lock, then fail the re-check against the winner's committed used_at.
# - successor: the next token of the chain, for the winner, or for every exchange inside the
#   grace window (including one that lost a race to a winner of this very moment).
# - the result: one row per role of the session's user when the token exists, none otherwise.
#   The user and roles are read in the same statement (they may have changed since login).
_REFRESH_POSTGRESQL = (
    text(
        """
WITH presented AS (
    SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = :digest
),
live AS (
    UPDATE sessions AS s SET last_used_at = :now
    FROM presented AS p
    WHERE s.id = p.session_id
      AND (p.used_at IS NULL OR (:grace AND p.used_at >= :grace_cutoff))
      AND s.revoked_at IS NULL
      AND s.expires_at > :now
      AND s.last_used_at > :idle_cutoff
    RETURNING s.id, s.user_id, s.tenant_id
),
spent AS (
    UPDATE refresh_tokens SET used_at = :now
    WHERE token_hash = :digest
      AND used_at IS NULL
      AND session_id IN (SELECT id FROM live)
    RETURNING session_id
),
successor AS (
    INSERT INTO refresh_tokens (id, tenant_id, session_id, token_hash, created_at)
    SELECT :successor_id, live.tenant_id, live.id, :successor_digest, :now
    FROM live
    WHERE :grace OR EXISTS (SELECT FROM spent)
    RETURNING session_id
)
SELECT p.session_id AS token_session_id,
       p.used_at AS token_used_at,
       live.id IS NOT NULL AS session_live,
       EXISTS (SELECT FROM spent) AS spent,
       successor.session_id IS NOT NULL AS rotated,
       live.user_id AS session_user_id,
       u.id, u.tenant_id, u.email, u.name, u.status, u.email_verified_at, u.created_at,
       u.last_login_at, r.name AS role
FROM presented AS p
LEFT JOIN live ON true
LEFT JOIN successor ON true
LEFT JOIN users AS u ON u.id = live.user_id
LEFT JOIN user_roles AS ur ON ur.user_id = u.id
LEFT JOIN roles AS r ON r.id = ur.role_id
"""
    )
    .bindparams(
        bindparam("digest", type_=LargeBinary()),
        bindparam("now", type_=UTCDateTime()),
        bindparam("grace", type_=Boolean()),
        bindparam("grace_cutoff", type_=UTCDateTime()),
        bindparam("idle_cutoff", type_=UTCDateTime()),
        bindparam("successor_id", type_=Uuid()),
        bindparam("successor_digest", type_=LargeBinary()),
    )
    .columns(
        token_session_id=Uuid(),
        token_used_at=UTCDateTime(),
        session_user_id=Uuid(),
        id=Uuid(),
        tenant_id=Uuid(),
        email_verified_at=UTCDateTime(),
        created_at=UTCDateTime(),
        last_login_at=UTCDateTime(),
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


@dataclass(frozen=True)
class _Rotated:
    """A refresh token exchanged: the session's next token and its user, read fresh."""

    session_id: uuid.UUID
    user_id: uuid.UUID
    refresh_token: str
    result: str  # metrics label: "success", or "grace" inside the reuse grace window
    identity: Identity | None  # None: the user no longer exists


@dataclass(frozen=True)
class _Reused:
    """A spent token presented again outside the grace window: the session must be revoked."""

    session_id: uuid.UUID


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
        """Authenticate and open a session. Errors come from AccountService.verify_login.

        After the user lookup of the credential check, every write of a successful login
        (last_login_at, the session, its first refresh token, the audit row) is one atomic
        statement: one round trip on PostgreSQL (Database.write_together).
        """
        try:
            verified = await self._accounts.verify_login(email, password, ctx)
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
        session (RefreshTokenReused). One round trip on PostgreSQL (_REFRESH_POSTGRESQL); a
        transaction of several statements elsewhere.
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
        if self._db.dialect == "postgresql":
            outcome = await self._exchange_one_statement(digest, now)
        else:
            outcome = await self._exchange_in_transaction(digest, now)
        if isinstance(outcome, _Reused):
            await self._on_reuse(outcome.session_id, ctx)
            raise RefreshTokenReused
        # Roles or status may have changed since login: they were read with the exchange.
        identity = outcome.identity
        if identity is None or not identity.active:
            await self.revoke_user_sessions(outcome.user_id, reason="user_inactive")
            metrics.REFRESHES.labels("invalid").inc()
            raise InvalidRefreshToken
        access = await self._access.issue(
            identity.id, outcome.session_id, identity.tenant_id, list(identity.roles)
        )
        metrics.REFRESHES.labels(outcome.result).inc()
        return TokenPair(access.token, access.expires_in, outcome.refresh_token, outcome.session_id)

    def _grace_cutoff(self, now: datetime) -> datetime | None:
        """Tokens spent at or after this instant are inside the grace window (None: no window)."""
        grace = self._settings.refresh_reuse_grace_seconds
        return now - timedelta(seconds=grace) if grace else None

    async def _exchange_one_statement(self, digest: bytes, now: datetime) -> _Rotated | _Reused:
        """PostgreSQL: spend, check, rotate and read the user in one statement."""
        cutoff = self._grace_cutoff(now)
        successor = new_token()
        async with self._db.single() as conn:
            rows = (
                await conn.execute(
                    _REFRESH_POSTGRESQL,
                    {
                        "digest": digest,
                        "now": now,
                        "grace": cutoff is not None,
                        "grace_cutoff": cutoff or now,
                        "idle_cutoff": now
                        - timedelta(seconds=self._settings.refresh_idle_ttl_seconds),
                        "successor_id": uuid.uuid4(),
                        "successor_digest": token_digest(successor),
                    },
                )
            ).all()
        if not rows:
            metrics.REFRESHES.labels("invalid").inc()
            raise InvalidRefreshToken
        row = rows[0]
        if row.rotated:
            return _Rotated(
                row.token_session_id,
                row.session_user_id,
                successor,
                "success" if row.spent else "grace",
                identity_from_rows(rows) if row.id is not None else None,
            )
        in_grace = (
            cutoff is not None and row.token_used_at is not None and row.token_used_at >= cutoff
        )
        if row.session_live or (row.token_used_at is not None and not in_grace):
            # Spent outside the grace window; or, without a window, spent by a concurrent
            # exchange that won the row lock (the portable path decides the same).
            return _Reused(row.token_session_id)
        # Unspent or inside the grace window, but the session is revoked or expired.
        metrics.REFRESHES.labels("expired").inc()
        raise InvalidRefreshToken

    async def _exchange_in_transaction(self, digest: bytes, now: datetime) -> _Rotated | _Reused:
        """Portable (SQLite): the same decisions, one statement at a time in a transaction."""
        result = "success"
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
                cutoff = self._grace_cutoff(now)
                if cutoff is not None and spent.used_at is not None and spent.used_at >= cutoff:
                    session_id = spent.session_id
                    result = "grace"
                else:
                    reused_session = spent.session_id
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
                successor = new_token()
                s.add(
                    RefreshToken(
                        id=uuid.uuid4(),
                        tenant_id=live.tenant_id,
                        session_id=session_id,
                        token_hash=token_digest(successor),
                        created_at=now,
                    )
                )
        if reused_session is not None:
            return _Reused(reused_session)
        assert session_id is not None
        assert live is not None
        # Read outside the transaction: SQLite serialises connections.
        identity = await self._accounts.identity(live.user_id)
        return _Rotated(session_id, live.user_id, successor, result, identity)

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

    async def active_identity(self, session_id: uuid.UUID, user_id: uuid.UUID) -> Identity:
        """Freshness check for routes that must not trust a revoked session's access token.

        The session must be usable and belong to ``user_id``, and the user must be active;
        returns the user, read in the same statement (one round trip). Raises SessionNotFound.
        """
        now = utcnow()
        idle = timedelta(seconds=self._settings.refresh_idle_ttl_seconds)
        async with self._db.single() as conn:
            rows = (
                await conn.execute(
                    _ACTIVE_IDENTITY,
                    {
                        "session_id": session_id,
                        "user_id": user_id,
                        "now": now,
                        "idle_cutoff": now - idle,
                    },
                )
            ).all()
        identity = identity_from_rows(rows)
        if identity is None:
            raise SessionNotFound
        return identity

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
