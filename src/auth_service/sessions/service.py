"""Sessions: sign-in opens one, refresh rotates its tokens, logout and revocation end it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from sqlalchemy import Insert, bindparam, func, insert, select, update
from sqlalchemy.engine import Row

from auth_service.accounts.credentials import VerifiedLogin
from auth_service.accounts.identity import (
    Identity,
    IdentityReader,
    UserStatus,
    identity_from_rows,
    identity_select,
)
from auth_service.accounts.invalidation import IdentityInvalidation
from auth_service.accounts.models import User
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditEntry, AuditService
from auth_service.config.settings import TokenSettings
from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.keys.tokens import AccessTokenService
from auth_service.observability import metrics
from auth_service.security.dpop import same_key
from auth_service.security.random import new_token, token_digest
from auth_service.security.ratelimit import Limiter, RateLimited, RateLimiter
from auth_service.sessions.errors import (
    DPoPKeyRequired,
    InvalidRefreshToken,
    RefreshTokenReused,
    SessionNotFound,
)
from auth_service.sessions.identity_cache import IdentityCache
from auth_service.sessions.models import RefreshToken, Session, SessionKind, session_usable
from auth_service.sessions.refresh import (
    DPOP_MARKER,
    RefreshExchange,
    Reused,
    Rotated,
    is_dpop_bound,
)
from auth_service.sessions.revocation import SessionRevoker

log = structlog.get_logger(__name__)

MAX_REFRESH_TOKEN_LENGTH = 256

# What the per-worker identity cache needs to know how long an answer may be served
# (sessions.identity_cache, ADR 0431).
_CACHE_COLUMNS = (
    Session.expires_at.label("session_expires_at"),
    Session.last_used_at.label("session_last_used_at"),
    Session.kind.label("session_kind"),
)

# The freshness check of bearer-authenticated routes and the user it returns, in ONE
# statement: the session must exist, belong to the token's subject and be usable
# (``session_usable``), and the user must be active. Read on every request, never cached, so
# a revocation or a disabled account is refused from the next request on.
_ACTIVE_IDENTITY = (
    identity_select(*_CACHE_COLUMNS)
    .join(Session, Session.user_id == User.id)
    .where(
        Session.id == bindparam("session_id"),
        Session.user_id == bindparam("user_id"),
        User.status == UserStatus.active.value,
        session_usable(bindparam("now"), bindparam("idle_cutoff")),
    )
)


# The same without the user: the session (an OAuth grant) says whose it is, for tokens whose
# ``sub`` is not the user's id (pairwise subjects, OIDC Core 8.1).
_ACTIVE_SESSION_IDENTITY = (
    identity_select(*_CACHE_COLUMNS)
    .join(Session, Session.user_id == User.id)
    .where(
        Session.id == bindparam("session_id"),
        User.status == UserStatus.active.value,
        session_usable(bindparam("now"), bindparam("idle_cutoff")),
    )
)


# A browser session by the SHA-256 of its cookie, with its user, in ONE statement: usable
# (``session_usable``) and the user active, like the bearer check.
_BROWSER_SESSION = (
    identity_select(
        Session.id.label("session_id"),
        Session.auth_time,
        Session.amr,
        Session.acr,
        Session.last_used_at,
    )
    .join(Session, Session.user_id == User.id)
    .where(
        Session.token_hash == bindparam("token_hash"),
        Session.kind == SessionKind.browser.value,
        User.status == UserStatus.active.value,
        session_usable(bindparam("now"), bindparam("idle_cutoff")),
    )
)

# Moving last_used_at on every page view would be a write per request; a minute is far
# below any idle lifetime we allow (at least 60 s, usually days).
TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class BrowserSession:
    """A signed-in browser, as the hosted pages and the authorization endpoint see it."""

    id: uuid.UUID
    identity: Identity
    auth_time: datetime
    amr: tuple[str, ...]
    acr: str | None


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    session_id: uuid.UUID
    dpop_jkt: str | None = None  # the DPoP key the access token is bound to (RFC 9449)

    @property
    def token_type(self) -> Literal["Bearer", "DPoP"]:
        """``DPoP`` for a token bound to a key (RFC 9449 section 5), ``Bearer`` otherwise."""
        return "DPoP" if self.dpop_jkt else "Bearer"


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
        identities: IdentityReader,
        access_tokens: AccessTokenService,
        limiter: RateLimiter,
        audit: AuditService,
        revoker: SessionRevoker,
        identity_cache: IdentityCache | None = None,
    ) -> None:
        self._db = db
        self.identity_cache = identity_cache
        # Fills in progress in this worker: concurrent misses of one session read it once.
        self._fills: dict[tuple[uuid.UUID, uuid.UUID | None], asyncio.Future[Identity | None]] = {}
        self._invalidation = IdentityInvalidation(identity_cache.bus) if identity_cache else None
        self._settings = settings
        self._access = access_tokens
        self._limiter = limiter
        self._audit = audit
        self._revoker = revoker
        self._exchange = RefreshExchange(db, settings, identities)

    def apply_settings(self, settings: TokenSettings) -> None:
        """Hot reload: refresh lifetimes and reuse grace apply to the next exchange (and the
        identity cache forgets what it computed with the old idle lifetime)."""
        self._settings = settings
        if self.identity_cache is not None:
            self.identity_cache.clear()
        self._exchange.settings = settings

    def _idle_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self._settings.refresh_idle_ttl_seconds)

    async def open_api_session(
        self, verified: VerifiedLogin, ctx: RequestContext, *, dpop_jkt: str | None = None
    ) -> TokenPair:
        """Open a session of checked credentials with its first refresh token; and an access
        token for it. Every write (the login record, the session, the refresh token, the
        audit row) is one atomic statement: one round trip on PostgreSQL.

        ``dpop_jkt``: the thumbprint of the client's DPoP key (RFC 9449), proven by the
        caller: the access token carries it (``cnf.jkt``) and the session keeps it, so every
        refresh must prove the same key."""
        identity = verified.identity
        session_id = uuid.uuid4()
        refresh = (DPOP_MARKER if dpop_jkt else "") + new_token()
        audit = self._opened(verified, session_id, SessionKind.api, ctx)
        now = audit.occurred_at
        await self._db.write_together(
            verified.record,
            self._insert_session(
                verified, session_id, SessionKind.api, now, ctx, dpop_jkt=dpop_jkt
            ),
            # Only the SHA-256 of the token is stored.
            insert(RefreshToken).values(
                id=uuid.uuid4(),
                tenant_id=identity.tenant_id,
                session_id=session_id,
                token_hash=token_digest(refresh),
                created_at=now,
            ),
            *self._audit.stores(audit),
        )
        await self._login_recorded(identity.id)
        access = await self._access.issue(
            identity.id,
            session_id,
            identity.tenant_id,
            list(identity.roles),
            amr=[m.value for m in verified.amr],
            acr=verified.acr.value,
            auth_time=int(now.timestamp()),
            jkt=dpop_jkt,
        )
        metrics.LOGINS.labels("success").inc()
        self._audit.emit(audit)
        return TokenPair(access.token, access.expires_in, refresh, session_id, dpop_jkt)

    async def open_browser_session(
        self, verified: VerifiedLogin, ctx: RequestContext
    ) -> tuple[uuid.UUID, str]:
        """Open a browser session of checked credentials: its id and the cookie value (only
        its SHA-256 is stored). One atomic statement, like ``open_api_session``."""
        session_id = uuid.uuid4()
        cookie = new_token()
        audit = self._opened(verified, session_id, SessionKind.browser, ctx)
        await self._db.write_together(
            verified.record,
            self._insert_session(
                verified,
                session_id,
                SessionKind.browser,
                audit.occurred_at,
                ctx,
                token_hash=token_digest(cookie),
            ),
            *self._audit.stores(audit),
        )
        await self._login_recorded(verified.identity.id)
        metrics.LOGINS.labels("success").inc()
        self._audit.emit(audit)
        return session_id, cookie

    async def _login_recorded(self, user_id: uuid.UUID) -> None:
        """The login record changed the user (``last_login_at``, a cancelled deletion): the
        cached identities of their other sessions are forgotten (ADR 0431)."""
        if self._invalidation is not None:
            await self._invalidation.user_changed(user_id)

    def _opened(
        self, verified: VerifiedLogin, session_id: uuid.UUID, kind: SessionKind, ctx: RequestContext
    ) -> AuditEntry:
        user_id = verified.identity.id
        return self._audit.prepare(
            events.LOGIN_SUCCEEDED,
            ctx.with_actor(user_id),
            subject=user_id,
            details={"session_id": str(session_id), "kind": kind.value},
        )

    def _insert_session(
        self,
        verified: VerifiedLogin,
        session_id: uuid.UUID,
        kind: SessionKind,
        now: datetime,
        ctx: RequestContext,
        *,
        token_hash: bytes | None = None,
        dpop_jkt: str | None = None,
    ) -> Insert:
        identity = verified.identity
        # Every value explicit: the INSERT may run as a CTE, where defaults are not applied.
        return insert(Session).values(
            id=session_id,
            tenant_id=identity.tenant_id,
            user_id=identity.id,
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(seconds=self._settings.refresh_absolute_ttl_seconds),
            ip=ctx.ip,
            user_agent=(ctx.user_agent or "")[:512] or None,
            kind=kind.value,
            token_hash=token_hash,
            auth_time=now,
            amr=[m.value for m in verified.amr],
            acr=verified.acr.value,
            dpop_jkt=dpop_jkt,
        )

    async def refresh(
        self, refresh_token: str, ctx: RequestContext, *, dpop_jkt: str | None = None
    ) -> TokenPair:
        """Exchange a refresh token of the JSON API for a new pair, spending it
        (``rotate_refresh_token``). ``dpop_jkt``: the key of the request's DPoP proof, which
        a bound session requires (and binds the new access token to). Raises RateLimited,
        InvalidRefreshToken, RefreshTokenReused or DPoPKeyRequired."""
        outcome = await self.rotate_refresh_token(
            refresh_token, ctx, client_id=None, dpop_jkt=dpop_jkt
        )
        identity = outcome.identity
        assert identity is not None
        facts = outcome.facts
        access = await self._access.issue(
            identity.id,
            outcome.session_id,
            identity.tenant_id,
            list(identity.roles),
            amr=list(facts.amr),
            acr=facts.acr,
            auth_time=int(facts.auth_time.timestamp()),
            jkt=dpop_jkt,
        )
        metrics.REFRESHES.labels(outcome.result).inc()
        return TokenPair(
            access.token, access.expires_in, outcome.refresh_token, outcome.session_id, dpop_jkt
        )

    async def rotate_refresh_token(
        self,
        refresh_token: str,
        ctx: RequestContext,
        *,
        client_id: str | None,
        dpop_jkt: str | None = None,
    ) -> Rotated:
        """Spend a refresh token of ``client_id`` (None: the JSON API; else an OAuth client)
        and return its successor with the session's user, read fresh (sessions.refresh).

        A token of another client is unknown (InvalidRefreshToken, nothing spent). A token
        spent earlier than the reuse grace window revokes the session (RefreshTokenReused).
        A JSON API session bound to a DPoP key (``open_api_session``) is refreshed only
        with ``dpop_jkt`` that key, checked before anything is spent: a stolen refresh token
        without the key neither works nor burns the session.
        Raises RateLimited, InvalidRefreshToken, RefreshTokenReused or DPoPKeyRequired.
        """
        try:
            await self._limiter.hit(Limiter.ip_refresh, ctx.ip or "unknown")
        except RateLimited:
            metrics.REFRESHES.labels("rate_limited").inc()
            raise
        if not refresh_token or len(refresh_token) > MAX_REFRESH_TOKEN_LENGTH:
            metrics.REFRESHES.labels("invalid").inc()
            raise InvalidRefreshToken
        if client_id is None and is_dpop_bound(refresh_token):
            await self._check_dpop_key(refresh_token, dpop_jkt)
        outcome = await self._exchange.exchange(refresh_token, utcnow(), client_id)
        if isinstance(outcome, Reused):
            await self._on_reuse(outcome.session_id, ctx)
            raise RefreshTokenReused
        # Roles or status may have changed since login: they were read with the exchange.
        identity = outcome.identity
        if identity is None or not identity.active:
            await self._revoker.revoke_user_sessions(outcome.user_id, reason="user_inactive")
            metrics.REFRESHES.labels("invalid").inc()
            raise InvalidRefreshToken
        return outcome

    async def _check_dpop_key(self, refresh_token: str, dpop_jkt: str | None) -> None:
        """Refuse the refresh of a DPoP-bound session (its token has the marker) without a
        proof by its key. Only bound sessions pay this read; an unbound session's refresh
        stays one round trip, and a proof there only binds the new access token."""
        if dpop_jkt is None:
            metrics.REFRESHES.labels("invalid").inc()
            raise DPoPKeyRequired
        async with self._db.single() as conn:
            bound: str | None = await conn.scalar(
                select(Session.dpop_jkt)
                .join(RefreshToken, RefreshToken.session_id == Session.id)
                .where(RefreshToken.token_hash == token_digest(refresh_token))
            )
        if bound is not None and not same_key(dpop_jkt, bound):
            metrics.REFRESHES.labels("invalid").inc()
            raise DPoPKeyRequired

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

    async def active_identity(self, session_id: uuid.UUID, user_id: uuid.UUID | None) -> Identity:
        """Freshness check for routes that must not trust a revoked session's access token.

        The session must be usable and belong to ``user_id`` (None: whoever it belongs to),
        and the user must be active; returns the user, read in the same statement (one round
        trip). Raises SessionNotFound.
        """
        identity, _ = await self._read_identity(session_id, user_id, utcnow())
        return identity

    async def cached_identity(self, session_id: uuid.UUID, user_id: uuid.UUID | None) -> Identity:
        """``active_identity``, answered from this worker's identity cache while it may serve
        (ADR 0431): the bearer path of the JSON API (``fresh_principal``)."""
        cache = self.identity_cache
        if cache is None or not cache.serving:
            return await self.active_identity(session_id, user_id)
        now = utcnow()
        hit = cache.get(session_id, user_id, now)
        if hit is not None:
            return hit
        key = (session_id, user_id)
        in_flight = self._fills.get(key)
        if in_flight is not None:
            # Another request of this worker is reading the same session: its answer, if
            # it was stored (no invalidation or loss since it began); else our own read.
            with contextlib.suppress(Exception):
                stored = await asyncio.shield(in_flight)
                if stored is not None:
                    return stored
            return await self.active_identity(session_id, user_id)
        done: asyncio.Future[Identity | None] = asyncio.get_running_loop().create_future()
        self._fills[key] = done
        try:
            identity = await self._fill(cache, session_id, user_id, now)
        except BaseException:
            done.set_result(None)
            raise
        finally:
            self._fills.pop(key, None)
        if not done.done():
            done.set_result(identity if cache.get(session_id, user_id, now) is identity else None)
        return identity

    async def _fill(
        self, cache: IdentityCache, session_id: uuid.UUID, user_id: uuid.UUID | None, now: datetime
    ) -> Identity:
        pending = cache.begin()
        read_at = time.monotonic()
        identity, row = await self._read_identity(session_id, user_id, now)
        if row.session_kind == SessionKind.api.value:
            idle_until = row.session_last_used_at + timedelta(
                seconds=self._settings.refresh_idle_ttl_seconds
            )
            until = min(row.session_expires_at, idle_until)
            cache.store(pending, session_id, user_id, identity, until, read_at)
        return identity

    async def _read_identity(
        self, session_id: uuid.UUID, user_id: uuid.UUID | None, now: datetime
    ) -> tuple[Identity, Row[Any]]:
        statement = _ACTIVE_IDENTITY if user_id is not None else _ACTIVE_SESSION_IDENTITY
        async with self._db.single() as conn:
            rows = (
                await conn.execute(
                    statement,
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
        return identity, rows[0]

    async def browser_session(self, cookie: str) -> BrowserSession | None:
        """The live browser session of this cookie value, or None."""
        if not cookie or len(cookie) > MAX_REFRESH_TOKEN_LENGTH:
            return None
        now = utcnow()
        async with self._db.single() as conn:
            rows = (
                await conn.execute(
                    _BROWSER_SESSION,
                    {
                        "token_hash": token_digest(cookie),
                        "now": now,
                        "idle_cutoff": self._idle_cutoff(now),
                    },
                )
            ).all()
        identity = identity_from_rows(rows)
        if identity is None:
            return None
        row = rows[0]
        if now - row.last_used_at > TOUCH_INTERVAL:
            async with self._db.single() as conn:
                await conn.execute(
                    update(Session).where(Session.id == row.session_id).values(last_used_at=now)
                )
        return BrowserSession(
            row.session_id, identity, row.auth_time, tuple(row.amr or ()), row.acr
        )

    async def rotate_browser_session(self, session_id: uuid.UUID) -> str:
        """A new cookie value for a live browser session (after a privilege change: the old
        value, which may have been seen before, stops working). Raises SessionNotFound."""
        cookie = new_token()
        async with self._db.single() as conn:
            result = await conn.execute(
                update(Session)
                .where(Session.id == session_id, Session.revoked_at.is_(None))
                .values(token_hash=token_digest(cookie))
            )
        if result.rowcount != 1:
            raise SessionNotFound
        return cookie

    async def end_browser_session(self, session: BrowserSession, ctx: RequestContext) -> None:
        """Sign a browser out: its session is revoked (idempotent)."""
        await self._revoker.revoke(session.id, reason="logout")
        metrics.LOGOUTS.inc()
        user_id = session.identity.id
        await self._audit.record(
            events.SESSION_LOGGED_OUT,
            ctx.with_actor(user_id),
            subject=user_id,
            details={"session_id": str(session.id), "kind": SessionKind.browser.value},
        )

    async def list_sessions(self, user_id: uuid.UUID) -> list[SessionInfo]:
        """The user's usable sessions, newest first; OAuth grants are listed as connected
        apps instead (the oauth domain)."""
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
                    .where(
                        Session.user_id == user_id,
                        Session.kind != SessionKind.oauth.value,
                        session_usable(now, self._idle_cutoff(now)),
                    )
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
