"""The jobs table: one row per job, from enqueue until it is purged after its retention."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.db.base import Base, TenantScoped, utcnow


class JobRow(TenantScoped, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # The idempotency key: enqueueing a (kind, key) the table still holds makes no new job.
        UniqueConstraint("tenant_id", "kind", "key", name="uq_jobs_tenant_kind_key"),
        # Claiming: due queued jobs and expired leases, oldest due first.
        Index("ix_jobs_state_run_at", "state", "run_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    # queued, running, done, dead, discarded (jobs.states).
    state: Mapped[str] = mapped_column(String(16))
    # Clear JSON for kinds whose payload holds nothing secret; otherwise NULL and the payload
    # is in ``sealed`` (AES-GCM under the master key), cleared once the job is done.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int]
    run_at: Mapped[datetime]
    locked_by: Mapped[str | None] = mapped_column(String(128))
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    # W3C traceparent of the request that enqueued the job: its attempts continue that trace.
    traceparent: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
