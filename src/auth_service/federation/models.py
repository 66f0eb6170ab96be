"""Connectors to upstream identity providers, and the upstream identities linked to users."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.db.base import Base, TenantScoped, utcnow


class ConnectorRow(TenantScoped, Base):
    __tablename__ = "federation_connectors"

    # The operator's name for it (``--id``): in the callback path, so it is a slug.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(16))
    issuer: Mapped[str] = mapped_column(String(512))
    client_id: Mapped[str] = mapped_column(String(512))
    # Sealed under the master key (AES-256-GCM), bound to the connector id.
    client_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary(1024))
    scope: Mapped[str] = mapped_column(String(512))
    trust_email: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_signup: Mapped[bool] = mapped_column(Boolean, default=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Type-specific settings (e.g. the Entra tenant); none of them secret.
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class FederatedIdentity(TenantScoped, Base):
    """A user's account at an upstream provider: ``sub`` of that connector's issuer."""

    __tablename__ = "federated_identities"
    __table_args__ = (
        UniqueConstraint(
            "connector_id", "subject", name="uq_federated_identities_connector_subject"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    connector_id: Mapped[str] = mapped_column(
        ForeignKey("federation_connectors.id", ondelete="CASCADE")
    )
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    # The upstream's token response of the last sign-in, only when the connector keeps
    # tokens: sealed under the master key, bound to (connector, subject).
    tokens_sealed: Mapped[bytes | None] = mapped_column(LargeBinary(16384))
    tokens_updated_at: Mapped[datetime | None]
