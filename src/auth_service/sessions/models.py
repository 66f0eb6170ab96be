"""Sessions and their refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ColumnElement, ForeignKey, LargeBinary, String, and_
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.db.base import Base, TenantScoped, utcnow


class SessionKind(StrEnum):
    api = "api"  # refresh tokens over the JSON API
    browser = "browser"  # a cookie of the hosted pages
    oauth = "oauth"  # a grant to an OAuth client: its access and refresh tokens


class Session(TenantScoped, Base):
    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(16), default="api", server_default="api")
    # A browser session's cookie, as SHA-256 (the cookie itself is never stored).
    token_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    # When and how the user last authenticated in this session (OIDC auth_time, amr, acr).
    auth_time: Mapped[datetime] = mapped_column(default=utcnow)
    amr: Mapped[list[str] | None] = mapped_column(JSON)
    acr: Mapped[str | None] = mapped_column(String(16))
    # An OAuth grant (kind "oauth"): the client it was issued to, the scope and resources
    # (RFC 8707) it covers, and the browser session it was granted in (OIDC sid).
    client_id: Mapped[str | None] = mapped_column(String(64), index=True)
    scope: Mapped[str | None] = mapped_column(String(2048))
    resources: Mapped[list[str] | None] = mapped_column(JSON)
    # Indexed: ending a browser session finds the grants made in it (ADR 0750).
    browser_session_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    # A JSON API session opened with a DPoP proof (RFC 9449): the RFC 7638 thumbprint of the
    # client's key, which every refresh must prove again (docs/adr/0732).
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))


def session_usable(
    now: datetime | ColumnElement[datetime], idle_cutoff: datetime | ColumnElement[datetime]
) -> ColumnElement[bool]:
    """THE rule of a usable session, in SQL: not revoked, before its absolute expiry, and used
    after ``idle_cutoff`` (now minus the idle lifetime). Every read and write that needs a
    live session (the bearer check, refresh, the list, the gauge) uses this expression."""
    return and_(
        Session.revoked_at.is_(None),
        Session.expires_at > now,
        Session.last_used_at > idle_cutoff,
    )


class RefreshToken(TenantScoped, Base):
    """One link of a session's rotation chain. Only the SHA-256 of the token is kept."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]
