"""Security events: stored, queryable, and logged through the same pipeline as other logs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import structlog
from sqlalchemy import Insert, func, insert, select

from auth_service.audit.context import RequestContext
from auth_service.audit.models import AuditEvent
from auth_service.db.base import DEFAULT_TENANT_ID, utcnow
from auth_service.db.engine import Database

log = structlog.get_logger("auth_service.audit")

# Keys that must never be stored in details, whatever a caller passes.
_FORBIDDEN_DETAIL_KEYS = ("password", "token", "hash", "secret", "key")


@dataclass(frozen=True)
class AuditEntry:
    """One event: built by AuditService.prepare before it is stored, or read back by query.

    A hot path can store it inside its own statement (``insert``, e.g. as one data-modifying
    CTE of a larger statement, see Database.write_together), then call AuditService.emit.
    """

    id: uuid.UUID
    tenant_id: uuid.UUID
    occurred_at: datetime
    type: str
    outcome: str
    actor_user_id: uuid.UUID | None
    subject_user_id: uuid.UUID | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any]

    def insert(self) -> Insert:
        """The INSERT that stores this event (bound parameters only)."""
        return insert(AuditEvent).values(
            id=self.id,
            tenant_id=self.tenant_id,
            occurred_at=self.occurred_at,
            type=self.type,
            outcome=self.outcome,
            actor_user_id=self.actor_user_id,
            subject_user_id=self.subject_user_id,
            ip=self.ip,
            user_agent=self.user_agent,
            request_id=self.request_id,
            details=self.details,
        )


class AuditOutbox(Protocol):
    """Work that follows an event, stored in the event's own transaction (the outbox
    pattern): webhook deliveries are jobs that exist if and only if their event does."""

    def writes(self, entry: AuditEntry) -> Sequence[Insert]:
        """The statements to store with ``entry`` (independent of its row, as
        ``Database.write_together`` requires)."""
        ...


class AuditService:
    def __init__(self, db: Database, outbox: AuditOutbox | None = None) -> None:
        self._db = db
        self.outbox = outbox

    def stores(self, entry: AuditEntry) -> tuple[Insert, ...]:
        """Every write of one event: its row, and what the outbox adds (webhook deliveries).
        A caller that stores the event with its own writes passes all of them to
        ``Database.write_together``."""
        extra = tuple(self.outbox.writes(entry)) if self.outbox is not None else ()
        return (entry.insert(), *extra)

    @staticmethod
    def prepare(
        event_type: str,
        ctx: RequestContext,
        *,
        outcome: str = "success",
        subject: uuid.UUID | None = None,
        details: dict[str, Any] | None = None,
        tenant_id: uuid.UUID = DEFAULT_TENANT_ID,
    ) -> AuditEntry:
        """Build one event. Details must hold no secrets; suspicious keys are dropped."""
        clean = {
            k: v
            for k, v in (details or {}).items()
            if not any(bad in k.lower() for bad in _FORBIDDEN_DETAIL_KEYS)
        }
        return AuditEntry(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            occurred_at=utcnow(),
            type=event_type,
            outcome=outcome,
            actor_user_id=ctx.actor_user_id,
            subject_user_id=subject,
            ip=ctx.ip,
            user_agent=(ctx.user_agent or "")[:512] or None,
            request_id=ctx.request_id,
            details=clean,
        )

    @staticmethod
    def emit(entry: AuditEntry) -> None:
        """Log a stored event through the same pipeline as other logs."""
        log.info(
            entry.type,
            log_type="audit",
            outcome=entry.outcome,
            actor=str(entry.actor_user_id) if entry.actor_user_id else None,
            subject=str(entry.subject_user_id) if entry.subject_user_id else None,
            ip=entry.ip,
            tenant=str(entry.tenant_id),
            **entry.details,
        )

    async def record(
        self,
        event_type: str,
        ctx: RequestContext,
        *,
        outcome: str = "success",
        subject: uuid.UUID | None = None,
        details: dict[str, Any] | None = None,
        tenant_id: uuid.UUID = DEFAULT_TENANT_ID,
    ) -> None:
        """Store and log one event. Details must hold no secrets; suspicious keys are dropped."""
        entry = self.prepare(
            event_type, ctx, outcome=outcome, subject=subject, details=details, tenant_id=tenant_id
        )
        writes = self.stores(entry)
        if len(writes) > 1:
            # The event and its outbox: one statement on PostgreSQL, one transaction on SQLite.
            await self._db.write_together(*writes)
        else:
            # One INSERT, atomic on its own: no BEGIN/COMMIT round trips (Database.single).
            async with self._db.single() as conn:
                await conn.execute(writes[0])
        self._db.on_commit(lambda: self.emit(entry))

    async def query(
        self,
        *,
        user_id: uuid.UUID | None = None,
        event_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        tenant_id: uuid.UUID = DEFAULT_TENANT_ID,
    ) -> tuple[list[AuditEntry], int]:
        """Events newest first, filtered by user (actor or subject), type and time."""
        stmt = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
        if user_id is not None:
            stmt = stmt.where(
                (AuditEvent.subject_user_id == user_id) | (AuditEvent.actor_user_id == user_id)
            )
        if event_type is not None:
            stmt = stmt.where(AuditEvent.type == event_type)
        if since is not None:
            stmt = stmt.where(AuditEvent.occurred_at >= since)
        if until is not None:
            stmt = stmt.where(AuditEvent.occurred_at < until)
        async with self._db.session() as s:
            total = await s.scalar(select(func.count()).select_from(stmt.subquery()))
            rows = (
                await s.scalars(
                    stmt.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        return [
            AuditEntry(
                r.id,
                r.tenant_id,
                r.occurred_at,
                r.type,
                r.outcome,
                r.actor_user_id,
                r.subject_user_id,
                r.ip,
                r.user_agent,
                r.request_id,
                dict(r.details),
            )
            for r in rows
        ], int(total or 0)
