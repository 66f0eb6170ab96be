"""A flow in progress, bound to the browser (or API client) that started it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.db.base import Base, TenantScoped, utcnow


class FlowRow(TenantScoped, Base):
    __tablename__ = "flows"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(32))
    # SHA-256 of what the flow is bound to (see FlowStore): a flow id alone is not enough
    # to continue somebody else's flow.
    binding_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    completed_at: Mapped[datetime | None]
