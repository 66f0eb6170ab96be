"""API shapes of the admin API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from auth_service.accounts.schemas import AdminUserOut
from auth_service.audit.service import AuditRecord


class UserPage(BaseModel):
    items: list[AdminUserOut]
    total: int
    limit: int
    offset: int


class AdminUserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "disabled"] | None = None
    roles: list[Literal["admin"]] | None = Field(None, max_length=16)
    name: str | None = Field(None, max_length=200)


class AuditEventOut(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    type: str
    outcome: str
    actor_user_id: uuid.UUID | None
    subject_user_id: uuid.UUID | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, r: AuditRecord) -> AuditEventOut:
        return cls(
            id=r.id,
            occurred_at=r.occurred_at,
            type=r.type,
            outcome=r.outcome,
            actor_user_id=r.actor_user_id,
            subject_user_id=r.subject_user_id,
            ip=r.ip,
            user_agent=r.user_agent,
            request_id=r.request_id,
            details=r.details,
        )


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    total: int
    limit: int
    offset: int


class RotateResponse(BaseModel):
    active_kid: str
