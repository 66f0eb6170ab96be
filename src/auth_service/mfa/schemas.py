"""API shapes of the MFA domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from auth_service.mfa.passkeys import PasskeyInfo
from auth_service.security.text import LabelText, PlainText

CODE_FIELD = Field(min_length=1, max_length=64)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CodeRequest(_Request):
    code: PlainText = CODE_FIELD


class PasskeyOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None
    synced: bool

    @classmethod
    def of(cls, info: PasskeyInfo) -> PasskeyOut:
        return cls(
            id=info.id,
            name=info.name,
            created_at=info.created_at,
            last_used_at=info.last_used_at,
            synced=info.device_type == "multi_device",
        )


class FactorsOut(BaseModel):
    totp: bool
    passkeys: list[PasskeyOut]
    recovery_codes_left: int
    required: bool = Field(description="a role of the user requires a second factor")


class TotpEnrolmentOut(BaseModel):
    secret: str = Field(description="base32, for typing into an app by hand")
    otpauth_uri: str
    qr_svg: str = Field(description="the URI as a QR code, an <svg> element")


class RecoveryCodesOut(BaseModel):
    codes: list[str] = Field(description="shown once; each works once")


class PasskeyOptionsOut(BaseModel):
    registration_token: str = Field(description="send back with the new credential")
    public_key: dict[str, Any] = Field(
        alias="publicKey", description="PublicKeyCredentialCreationOptions (JSON)"
    )
    model_config = ConfigDict(populate_by_name=True)


class PasskeyRegisterRequest(_Request):
    registration_token: PlainText = Field(min_length=1, max_length=512)
    credential: dict[str, Any] = Field(description="the RegistrationResponseJSON of the browser")
    name: PlainText | None = Field(None, max_length=64)


class PasskeyRenameRequest(_Request):
    name: LabelText
