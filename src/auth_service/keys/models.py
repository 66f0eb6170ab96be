"""Signing keys; private halves are stored AES-256-GCM encrypted under the master key."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.db.base import Base, TenantScoped, utcnow


class SigningKey(TenantScoped, Base):
    __tablename__ = "signing_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    # next: published, not yet signing; active: signing; retired: published until expiry.
    status: Mapped[str] = mapped_column(String(16), index=True)
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSON)
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    master_key_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None]
    retired_at: Mapped[datetime | None]
    publish_until: Mapped[datetime | None]
