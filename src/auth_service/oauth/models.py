"""The provider's tables: clients and their secrets, authorization codes, consents, and
revoked access tokens. Grants themselves are rows of ``sessions`` (kind ``oauth``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.db.base import Base, TenantScoped, utcnow


class OAuthClient(TenantScoped, Base):
    __tablename__ = "oauth_clients"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # confidential (has secrets) or public (native and browser apps: PKCE only)
    client_type: Mapped[str] = mapped_column(String(16))
    # Registered metadata (RFC 7591 names): redirect_uris, post_logout_redirect_uris,
    # grant_types, scope (allowed), resources (RFC 8707), token_endpoint_auth_method,
    # id_token_signed_response_alg.
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    dynamically_registered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OAuthClientSecret(TenantScoped, Base):
    """A client secret, as SHA-256 (ADR 0701). Several may be valid during a rotation."""

    __tablename__ = "oauth_client_secrets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client_pk: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]


class AuthorizationCode(TenantScoped, Base):
    """An issued authorization code (RFC 6749 section 4.1.2), as SHA-256, with what it will
    be exchanged for. Spent by a conditional UPDATE; ``grant_id`` names what it issued."""

    __tablename__ = "oauth_authorization_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    client_pk: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # The request, as the token endpoint must check and the tokens must say.
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]
    grant_id: Mapped[uuid.UUID | None]


class Consent(TenantScoped, Base):
    """Scopes a user allowed a client (remembered; withdrawn from /account)."""

    __tablename__ = "oauth_consents"
    __table_args__ = (UniqueConstraint("user_id", "client_pk", name="uq_oauth_consents_user"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    client_pk: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RevokedAccessToken(TenantScoped, Base):
    """An access token revoked before its expiry (RFC 7009), by ``jti``, kept until then:
    introspection and userinfo refuse it."""

    __tablename__ = "oauth_revoked_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class UsedJti(TenantScoped, Base):
    """A one-time JWT seen (a client assertion's or a DPoP proof's ``jti``), kept until it
    would have expired anyway: a second use is refused, by every worker (``oauth.replay``)."""

    __tablename__ = "oauth_used_jtis"

    # SHA-256 of purpose, issuer (the client or the key) and jti.
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class DPoPBinding(TenantScoped, Base):
    """The DPoP key a public client's grant is bound to (RFC 9449 section 5): its refresh
    tokens are accepted only with a proof by that key. Ends with the grant."""

    __tablename__ = "oauth_dpop_bindings"

    grant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    jkt: Mapped[str] = mapped_column(String(64))


class DeviceCode(TenantScoped, Base):
    """A device authorization request (RFC 8628 section 3.2): the device code and the user
    code as SHA-256, what the client asked for, and the user's decision once made on
    /device. Spent by a conditional UPDATE when the approved code is redeemed."""

    __tablename__ = "oauth_device_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    device_code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # The normalised user code's SHA-256: unique, so two live requests never share a code.
    user_code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    client_pk: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    # scope and resources asked for; after approval also auth_time, acr, amr, sid.
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    # pending, approved or denied (the user's answer on /device).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    interval: Mapped[int] = mapped_column(default=5)
    last_polled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]
    grant_id: Mapped[uuid.UUID | None]
