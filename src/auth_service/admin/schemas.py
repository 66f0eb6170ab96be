"""API shapes of the admin API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from auth_service.accounts.identity import UserStatus
from auth_service.accounts.schemas import AdminUserOut
from auth_service.audit.service import AuditEntry
from auth_service.security.text import NameText


class UserPage(BaseModel):
    items: list[AdminUserOut]
    total: int
    limit: int
    offset: int


class AdminUserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: UserStatus | None = None
    roles: list[Literal["admin"]] | None = Field(None, max_length=16)
    name: NameText | None = None


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
    def of(cls, r: AuditEntry) -> AuditEventOut:
        return cls.model_validate(r, from_attributes=True)


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    total: int
    limit: int
    offset: int


class RotateResponse(BaseModel):
    active_kid: str
