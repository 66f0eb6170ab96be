"""API shapes of personal-data requests."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from auth_service.security.text import PasswordText


class DeletionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: PasswordText


class DeletionScheduled(BaseModel):
    deletion_due_at: datetime
