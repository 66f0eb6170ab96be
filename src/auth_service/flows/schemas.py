"""API shapes of the sign-in's later steps."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from auth_service.security.text import PlainText

FLOW_ID = Field(min_length=1, max_length=128, description="the flow_id of the mfa-required answer")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SecondFactorRequest(_Request):
    """Exactly one of ``totp_code``, ``recovery_code`` or ``webauthn``."""

    flow_id: PlainText = FLOW_ID
    totp_code: PlainText | None = Field(None, min_length=1, max_length=16)
    recovery_code: PlainText | None = Field(None, min_length=1, max_length=64)
    webauthn: dict[str, Any] | None = Field(
        None, description="the AuthenticationResponseJSON of navigator.credentials.get()"
    )

    @model_validator(mode="after")
    def _one(self) -> SecondFactorRequest:
        given = [v for v in (self.totp_code, self.recovery_code, self.webauthn) if v is not None]
        if len(given) != 1:
            raise ValueError("send exactly one of totp_code, recovery_code, webauthn")
        return self


class FlowRequest(_Request):
    flow_id: PlainText = FLOW_ID


class PasskeyVerifyRequest(_Request):
    flow_id: PlainText = FLOW_ID
    credential: dict[str, Any] = Field(
        description="the AuthenticationResponseJSON of navigator.credentials.get()"
    )
