"""API shapes of the accounts domain."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from auth_service.accounts.identity import Identity
from auth_service.security.text import EmailText, NameText, PasswordText, TokenText


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(_Request):
    email: EmailText
    password: PasswordText
    name: NameText | None = None


class UpdateProfileRequest(_Request):
    name: NameText | None


class ChangePasswordRequest(_Request):
    current_password: PasswordText
    new_password: PasswordText


class ForgotPasswordRequest(_Request):
    email: EmailText


class ResetPasswordRequest(_Request):
    token: TokenText
    new_password: PasswordText


class VerifyEmailRequest(_Request):
    token: TokenText


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
