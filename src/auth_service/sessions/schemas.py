"""API shapes of the sessions domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from auth_service.security.text import EmailText, PasswordText, PlainText, TokenText
from auth_service.sessions.service import SessionInfo, TokenPair


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(_Request):
    email: EmailText
    password: PasswordText
    totp_code: PlainText | None = Field(
        None,
        min_length=1,
        max_length=16,
        description="the authenticator app's current code, for a client that has it already: "
        "finishes a sign-in that needs a second factor in this request",
    )


class RefreshRequest(_Request):
    refresh_token: TokenText


class TokenResponse(BaseModel):
    access_token: str
    # RFC 6750 Bearer; DPoP when the access token is bound to a DPoP key (RFC 9449 section 5).
    token_type: Literal["Bearer", "DPoP"] = "Bearer"  # noqa: S105 - a token type
    expires_in: int
    refresh_token: str
    session_id: uuid.UUID

    @classmethod
    def of(cls, pair: TokenPair) -> TokenResponse:
        return cls(
            access_token=pair.access_token,
            token_type=pair.token_type,
            expires_in=pair.expires_in,
            refresh_token=pair.refresh_token,
            session_id=pair.session_id,
        )


class SessionOut(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool

    @classmethod
    def of(cls, info: SessionInfo, current: uuid.UUID) -> SessionOut:
        return cls(
            id=info.id,
            created_at=info.created_at,
            last_used_at=info.last_used_at,
            expires_at=info.expires_at,
            ip=info.ip,
            user_agent=info.user_agent,
            current=info.id == current,
        )
