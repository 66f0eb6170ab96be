"""API shapes of the admin API."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from auth_service.accounts.identity import UserStatus
from auth_service.accounts.schemas import AdminUserOut
from auth_service.audit.service import AuditEntry
from auth_service.security.text import EmailText, NameText, PasswordText

_RFC3339_START = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]")


def _rfc3339_only(value: object) -> object:
    # pydantic also reads a number ("0.5") as seconds since the epoch; the API documents
    # RFC 3339 date-times (OpenAPI format date-time), and a number is more likely a mistake.
    if isinstance(value, str) and not _RFC3339_START.match(value):
        raise PydanticCustomError(
            "datetime_format", "must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z"
        )
    return value


Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]
"""A timezone-aware RFC 3339 date-time, and nothing else pydantic would read as one."""


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


class AdminUserCreate(BaseModel):
    """A new account made by an administrator. Without ``password`` it has none, and its
    user is mailed a reset link to choose one (an invitation)."""

    model_config = ConfigDict(extra="forbid")

    email: EmailText
    password: PasswordText | None = None
    name: NameText | None = None
    roles: list[Literal["admin"]] = Field(default_factory=list, max_length=16)
    email_verified: bool = False


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


class RejectedLine(BaseModel):
    line: int
    external_id: str | None
    reason: str


class UserImportReport(BaseModel):
    """Counts of an import, and its refused lines (the first ``REPORTED_REJECTS``)."""

    imported: int
    skipped: int = Field(description="lines whose external id was imported already")
    rejected: int
    rejected_lines: list[RejectedLine]
    rejected_lines_truncated: bool = Field(
        description="more lines were refused than rejected_lines lists"
    )
