"""Webhook subscriptions, the event types each receives, and the log of their deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.db.base import Base, TenantScoped, utcnow


class WebhookSubscription(TenantScoped, Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(200), default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    # The signing secret (``whsec_...``), AES-GCM under the master key, bound to this row.
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # After a rotation, the previous secret signs too until previous_expires_at.
    previous_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEventType(TenantScoped, Base):
    """One event type a subscription receives: the outbox joins on (event_type)."""

    __tablename__ = "webhook_event_types"
    __table_args__ = (Index("ix_webhook_event_types_type", "tenant_id", "event_type"),)

    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    event_type: Mapped[str] = mapped_column(String(64), primary_key=True)


class WebhookDelivery(TenantScoped, Base):
    """The outcome of one event sent to one subscription, updated at each attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", name="uq_webhook_deliveries_webhook_id"),
        Index("ix_webhook_deliveries_subscription_time", "subscription_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    # The Standard Webhooks message id: the job's idempotency key.
    webhook_id: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[uuid.UUID]
    # retrying (an attempt failed, another is due), delivered, dead (no attempt left).
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    response_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
