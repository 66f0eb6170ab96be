"""The refresh-token exchange: spend the presented token, check the session, rotate.

Refresh tokens follow the rotation pattern of the OAuth 2.0 Security BCP (RFC 9700, section
4.14.2): every exchange spends the presented token and issues its successor; presenting a
spent token again means it leaked, so the caller revokes the whole session. A reuse grace
window (``tokens.refresh_reuse_grace_seconds``, off by default) tolerates a client that lost
the response of an exchange and retries with the same token.

A refresh token belongs to one client: the first-party JSON API (``client_id`` None) or one
OAuth client (RFC 6749 section 6: "the refresh token was issued to the authenticated
client"). Presented by anyone else it is treated as unknown: it is neither spent nor rotated,
and no reuse is detected (the exchange never touches it), so a client cannot spend, or burn
by replaying, another client's tokens.

PostgreSQL runs the exchange as ONE statement in autocommit (one round trip), compiled once
and run on asyncpg's connection directly (``DriverStatement``: no SQLAlchemy execution or
result processing per exchange); SQLite runs the same decisions one statement at a time
inside a transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    Boolean,
    Exists,
    LargeBinary,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    exists,
    insert,
    or_,
    select,
    true,
    update,
)

from auth_service.accounts.identity import (
    IDENTITY_COLUMNS,
    ROLE_COLUMN,
    Identity,
    IdentityReader,
    identity_from_rows,
    with_roles,
)
from auth_service.accounts.models import User
from auth_service.config.settings import TokenSettings
from auth_service.db.base import UTCDateTime
from auth_service.db.engine import Backend, Database, DriverStatement
from auth_service.observability import metrics
from auth_service.security.random import new_token, token_digest
from auth_service.sessions.errors import InvalidRefreshToken
from auth_service.sessions.models import RefreshToken, Session, session_usable

# The refresh tokens of a JSON API session bound to a DPoP key (RFC 9449) start with this
# marker (``new_token`` never makes a ".": its alphabet is base64url). The digest covers the
# whole token, so the marker cannot be stripped or added: a marker-less token is never a
# bound session's, and the refresh of one needs no look-up of the session's key.
DPOP_MARKER = "dpop."


def is_dpop_bound(refresh_token: str) -> bool:
    return refresh_token.startswith(DPOP_MARKER)


@dataclass(frozen=True)
class GrantFacts:
    """What the session records about how it was granted: an OAuth grant's client, scope,
    resources and browser session, and the authentication it rests on (OIDC auth_time,
    amr, acr), so tokens minted on refresh say the same as the first ones."""

    client_id: str | None
    scope: str | None
    resources: tuple[str, ...]
    auth_time: datetime
    amr: tuple[str, ...]
    acr: str | None
    browser_session_id: uuid.UUID | None


def _json_list(value: Any) -> tuple[str, ...]:
    # A JSON column read on asyncpg's connection directly arrives as its text.
    if isinstance(value, str):
        value = json.loads(value)
    return tuple(value or ())


def _facts(row: Any, prefix: str = "") -> GrantFacts:
    def get(name: str) -> Any:
        return getattr(row, prefix + name)

    return GrantFacts(
        get("client_id"),
        get("scope"),
        _json_list(get("resources")),
        get("auth_time"),
        _json_list(get("amr")),
        get("acr"),
        get("browser_session_id"),
    )


# The session columns a rotation returns (GrantFacts).
_FACT_COLUMNS = (
    Session.client_id,
    Session.scope,
    Session.resources,
    Session.auth_time,
    Session.amr,
    Session.acr,
    Session.browser_session_id,
)


@dataclass(frozen=True)
class Rotated:
    """A refresh token exchanged: the session's next token and its user, read fresh."""

    session_id: uuid.UUID
    user_id: uuid.UUID
    refresh_token: str
    result: str  # metrics label: "success", or "grace" inside the reuse grace window
    identity: Identity | None  # None: the user no longer exists
    facts: GrantFacts


@dataclass(frozen=True)
class Reused:
    """A spent token presented again outside the grace window: the session must be revoked."""

    session_id: uuid.UUID


# The PostgreSQL exchange, ONE statement. Every sub-statement sees the statement's snapshot;
# the UPDATEs lock their row, and when a concurrent transaction changed it first PostgreSQL
# re-checks the UPDATE's conditions against the committed row before writing (READ COMMITTED).
# - presented: the presented token, by its SHA-256 (unique index).
# - live: the session row is locked and its last_used_at moved, only if the token may be
#   exchanged (unspent, or spent within the grace window when one is set) and the session is
#   usable (``session_usable``). Locking the session first serialises every exchange of one
#   session's tokens.
# - spent: the token is spent only if still unspent and its session is live. Of concurrent
#   exchanges of one token exactly one matches: the others wait on the row lock, then fail
#   the re-check against the winner's committed used_at.
# - successor: the next token of the chain, for the winner, or for every exchange inside the
#   grace window (including one that lost a race to a winner of this very moment).
# - the result: one row per role of the session's user when the token exists, none
#   otherwise; the user and roles are read in the same statement (``with_roles``).
_DIGEST = bindparam("digest", type_=LargeBinary())
_NOW = bindparam("now", type_=UTCDateTime())
_GRACE = bindparam("grace", type_=Boolean())
# Not named "client_id": an UPDATE takes a parameter named like a column as a SET value.
_CLIENT = bindparam("owner_client_id", type_=String())


def _live_session(presented: CTE) -> CTE:
    """Lock and touch the presented token's session if the token may be exchanged."""
    return (
        update(Session)
        .where(
            Session.id == presented.c.session_id,
            or_(
                presented.c.used_at.is_(None),
                and_(_GRACE, presented.c.used_at >= bindparam("grace_cutoff", type_=UTCDateTime())),
            ),
            session_usable(_NOW, bindparam("idle_cutoff", type_=UTCDateTime())),
        )
        .values(last_used_at=_NOW)
        .returning(Session.id, Session.user_id, Session.tenant_id, *_FACT_COLUMNS)
        .cte("live")
    )


def _successor(live: CTE, any_spent: Exists) -> CTE:
    """The next token of the chain (for the winner, or anyone inside the grace window)."""
    return (
        insert(RefreshToken)
        .from_select(
            ["id", "tenant_id", "session_id", "token_hash", "created_at"],
            select(
                bindparam("successor_id", type_=Uuid()),
                live.c.tenant_id,
                live.c.id,
                bindparam("successor_digest", type_=LargeBinary()),
                _NOW,
            ).where(or_(_GRACE, any_spent)),
        )
        .returning(RefreshToken.session_id)
        .cte("successor")
    )


def _one_statement_exchange() -> Select[Any]:
    presented = (
        select(RefreshToken.session_id, RefreshToken.used_at)
        .join(Session, Session.id == RefreshToken.session_id)
        .where(RefreshToken.token_hash == _DIGEST, Session.client_id.is_not_distinct_from(_CLIENT))
        .cte("presented")
    )
    live = _live_session(presented)
    spent = (
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == _DIGEST,
            RefreshToken.used_at.is_(None),
            RefreshToken.session_id.in_(select(live.c.id)),
        )
        .values(used_at=_NOW)
        .returning(RefreshToken.session_id)
        .cte("spent")
    )
    any_spent = exists(select(spent.c.session_id))
    successor = _successor(live, any_spent)
    return select(
        presented.c.session_id.label("token_session_id"),
        presented.c.used_at.label("token_used_at"),
        live.c.id.is_not(None).label("session_live"),
        any_spent.label("spent"),
        successor.c.session_id.is_not(None).label("rotated"),
        live.c.user_id.label("session_user_id"),
        *(live.c[c.key].label("grant_" + c.key) for c in _FACT_COLUMNS),
        *IDENTITY_COLUMNS,
        ROLE_COLUMN,
    ).select_from(
        with_roles(
            presented.outerjoin(live, true())
            .outerjoin(successor, true())
            .outerjoin(User, User.id == live.c.user_id)
        )
    )


_EXCHANGE_POSTGRESQL = _one_statement_exchange()
_EXCHANGE_DRIVER = DriverStatement(_EXCHANGE_POSTGRESQL)


class RefreshExchange:
    def __init__(self, db: Database, settings: TokenSettings, identities: IdentityReader) -> None:
        self._db = db
        self.settings = settings
        self._identities = identities

    def _idle_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self.settings.refresh_idle_ttl_seconds)

    def _grace_cutoff(self, now: datetime) -> datetime | None:
        """Tokens spent at or after this instant are inside the grace window (None: no window)."""
        grace = self.settings.refresh_reuse_grace_seconds
        return now - timedelta(seconds=grace) if grace else None

    async def exchange(
        self, refresh_token: str, now: datetime, client_id: str | None = None
    ) -> Rotated | Reused:
        """Spend ``refresh_token`` of ``client_id`` (None: the JSON API) and rotate, or report
        reuse. Exactly one of several concurrent exchanges of one token wins. A token of
        another client is unknown here. Raises InvalidRefreshToken."""
        digest = token_digest(refresh_token)
        # A DPoP-bound session's tokens carry the marker, and so do their successors.
        successor = (DPOP_MARKER if is_dpop_bound(refresh_token) else "") + new_token()
        if self._db.backend is Backend.postgresql:
            return await self._exchange_one_statement(digest, now, client_id, successor)
        return await self._exchange_in_transaction(digest, now, client_id, successor)

    async def _exchange_one_statement(
        self, digest: bytes, now: datetime, client_id: str | None, successor: str
    ) -> Rotated | Reused:
        cutoff = self._grace_cutoff(now)
        rows: Sequence[Any] = await self._db.fetch_driver(
            _EXCHANGE_DRIVER,
            {
                "digest": digest,
                "owner_client_id": client_id,
                "now": now,
                "grace": cutoff is not None,
                "grace_cutoff": cutoff or now,
                "idle_cutoff": self._idle_cutoff(now),
                "successor_id": uuid.uuid4(),
                "successor_digest": token_digest(successor),
            },
        )
        if not rows:
            metrics.REFRESHES.labels("invalid").inc()
            raise InvalidRefreshToken
        row = rows[0]
        if row.rotated:
            return Rotated(
                row.token_session_id,
                row.session_user_id,
                successor,
                "success" if row.spent else "grace",
                identity_from_rows(rows) if row.id is not None else None,
                _facts(row, "grant_"),
            )
        in_grace = (
            cutoff is not None and row.token_used_at is not None and row.token_used_at >= cutoff
        )
        if row.session_live or (row.token_used_at is not None and not in_grace):
            # Spent outside the grace window; or, without a window, spent by a concurrent
            # exchange that won the row lock (the portable path decides the same).
            return Reused(row.token_session_id)
        if row.token_used_at is None and cutoff is None and await self._spent_since(digest):
            # Our snapshot saw the token unspent, but while we waited for the session's row
            # lock a concurrent exchange spent it and another one's reuse detection revoked
            # the session: this presentation is a reuse too (rare: read once more only here).
            return Reused(row.token_session_id)
        # Unspent or inside the grace window, but the session is revoked or expired.
        metrics.REFRESHES.labels("expired").inc()
        raise InvalidRefreshToken

    async def _spent_since(self, digest: bytes) -> bool:
        async with self._db.single() as conn:
            used_at = await conn.scalar(
                select(RefreshToken.used_at).where(RefreshToken.token_hash == digest)
            )
        return used_at is not None

    async def _exchange_in_transaction(
        self, digest: bytes, now: datetime, client_id: str | None, successor: str
    ) -> Rotated | Reused:
        """Portable (SQLite): the same decisions, one statement at a time in a transaction."""
        result = "success"
        owned = RefreshToken.session_id.in_(
            select(Session.id).where(Session.client_id.is_not_distinct_from(client_id))
        )
        async with self._db.transaction() as s:
            session_id = await s.scalar(
                update(RefreshToken)
                .where(RefreshToken.token_hash == digest, RefreshToken.used_at.is_(None), owned)
                .values(used_at=now)
                .returning(RefreshToken.session_id)
            )
            if session_id is None:
                spent = (
                    await s.execute(
                        select(RefreshToken.session_id, RefreshToken.used_at).where(
                            RefreshToken.token_hash == digest, owned
                        )
                    )
                ).first()
                if spent is None:
                    metrics.REFRESHES.labels("invalid").inc()
                    raise InvalidRefreshToken
                cutoff = self._grace_cutoff(now)
                if cutoff is None or spent.used_at is None or spent.used_at < cutoff:
                    return Reused(spent.session_id)
                session_id = spent.session_id
                result = "grace"
            # One conditional UPDATE checks that the session is usable and locks its row as
            # SELECT ... FOR UPDATE would, in one round trip instead of two.
            live = (
                await s.execute(
                    update(Session)
                    .where(Session.id == session_id, session_usable(now, self._idle_cutoff(now)))
                    .values(last_used_at=now)
                    .returning(Session.user_id, Session.tenant_id, *_FACT_COLUMNS)
                )
            ).first()
            if live is None:
                metrics.REFRESHES.labels("expired").inc()
                raise InvalidRefreshToken
            await s.execute(
                insert(RefreshToken).values(
                    id=uuid.uuid4(),
                    tenant_id=live.tenant_id,
                    session_id=session_id,
                    token_hash=token_digest(successor),
                    created_at=now,
                )
            )
        # Read outside the transaction: SQLite serialises connections.
        identity = await self._identities.identity(live.user_id)
        return Rotated(session_id, live.user_id, successor, result, identity, _facts(live))
