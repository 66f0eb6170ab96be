"""API shapes of the accounts domain."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from auth_service.accounts.identity import Identity

# Generous upper bounds at the edge; the password policy gives the precise reasons.
PASSWORD_FIELD = Field(min_length=1, max_length=4096)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(_Request):
    email: str = Field(min_length=1, max_length=320)
    password: str = PASSWORD_FIELD
    name: str | None = Field(None, max_length=200)


class UpdateProfileRequest(_Request):
    name: str | None = Field(max_length=200)


class ChangePasswordRequest(_Request):
    current_password: str = PASSWORD_FIELD
    new_password: str = PASSWORD_FIELD


class ForgotPasswordRequest(_Request):
    email: str = Field(min_length=1, max_length=320)


class ResetPasswordRequest(_Request):
    token: str = Field(min_length=1, max_length=512)
    new_password: str = PASSWORD_FIELD


class VerifyEmailRequest(_Request):
    token: str = Field(min_length=1, max_length=512)


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    email_verified: bool
    name: str | None
    created_at: datetime

    @classmethod
    def of(cls, identity: Identity) -> UserOut:
        return cls(
            id=identity.id,
            email=identity.email,
            email_verified=identity.email_verified_at is not None,
            name=identity.name,
            created_at=identity.created_at,
        )


class AdminUserOut(UserOut):
    status: str
    roles: list[str]
    last_login_at: datetime | None

    @classmethod
    def of(cls, identity: Identity) -> AdminUserOut:
        return cls(
            **UserOut.of(identity).model_dump(),
            status=identity.status,
            roles=list(identity.roles),
            last_login_at=identity.last_login_at,
        )
