"""The ``mfa`` settings section: second factors, passkeys, policy and step-up.

Kept beside ``config.settings`` (which only gains the field) like the health and alerting
sections, so the shared module stays small.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from auth_service.config.sections import Section


class StepUpRule(Section):
    """What a sensitive operation asks of the session's authentication (NIST SP 800-63B
    section 4 levels as ``acr``; OIDC ``auth_time``). Unset fields ask nothing."""

    acr: Literal["aal1", "aal2"] | None = Field(
        None, description="the assurance level the session must have reached"
    )
    max_age_seconds: int | None = Field(
        None, ge=10, le=30 * 24 * 3600, description="how long ago the user may have signed in"
    )


class StepUpSettings(Section):
    """Sensitive API operations that can require a stronger or more recent sign-in."""

    password_change: StepUpRule = Field(default_factory=StepUpRule)
    factor_removal: StepUpRule = Field(
        default_factory=StepUpRule,
        description="removing a factor or regenerating recovery codes, on top of the recent "
        "sign-in (mfa.recent_auth_seconds) they always need",
    )
    admin: StepUpRule = Field(default_factory=StepUpRule)


class MfaSettings(Section):
    """Second factors (TOTP, recovery codes, passkeys) and when they are required."""

    enabled: bool = Field(True, description="offer second factors and passkeys at all")
    issuer: str | None = Field(
        None,
        max_length=60,
        description="the name authenticator apps show; default: ui.product_name",
    )
    totp_window: int = Field(
        1, ge=0, le=2, description="time steps of clock skew accepted either side (RFC 6238 5.2)"
    )
    recovery_codes: int = Field(10, ge=5, le=20, description="codes in a generated set")
    passkeys: bool = Field(True, description="WebAuthn passkeys: second factor and passwordless")
    rp_id: str | None = Field(
        None, description="WebAuthn relying party id; default: the host of server.public_url"
    )
    rp_name: str | None = Field(None, description="WebAuthn relying party name; default: product")
    origins: list[str] = Field(
        default_factory=list,
        description="origins a WebAuthn ceremony may come from; default: server.public_url's",
    )
    attestation: Literal["none", "indirect", "direct"] = Field(
        "none", description="WebAuthn attestation conveyance asked of new passkeys"
    )
    required_roles: list[str] = Field(
        default_factory=list,
        description="roles whose members must sign in with a second factor (e.g. [admin])",
    )
    enrolment_grace_days: int = Field(
        7,
        ge=0,
        le=365,
        description="days a user of a required role may still sign in without a factor, from "
        "the first such sign-in; then enrolment is forced at sign-in",
    )
    remember_device: bool = Field(
        False, description="'remember this device' (not offered: off, the NIST default)"
    )
    flow_ttl_seconds: int = Field(
        300, ge=30, le=3600, description="how long a pending second step stays valid"
    )
    max_attempts: int = Field(
        5, ge=1, le=20, description="wrong codes a pending second step takes before it ends"
    )
    recent_auth_seconds: int = Field(
        15 * 60,
        ge=30,
        le=7 * 24 * 3600,
        description="how recent a sign-in must be to remove a factor or regenerate codes",
    )
    step_up: StepUpSettings = Field(default_factory=StepUpSettings)

    @field_validator("origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        for origin in v:
            if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
        return [o.rstrip("/") for o in v]
