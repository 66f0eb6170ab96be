"""API shapes of the jobs admin API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from auth_service.jobs.admin import JobView


class JobOut(BaseModel):
    id: uuid.UUID
    kind: str
    key: str
    state: str
    attempts: int
    max_attempts: int
    run_at: datetime
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    locked_by: str | None
    locked_until: datetime | None
    last_error: str | None
    sealed: bool
    payload: dict[str, Any] | None

    @classmethod
    def of(cls, view: JobView) -> JobOut:
        return cls.model_validate(view, from_attributes=True)


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    limit: int
    offset: int
