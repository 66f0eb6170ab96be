"""Flow errors, each with the problem it answers with."""

from __future__ import annotations

from typing import Any

from auth_service.problems import ServiceError, problem


class FlowError(ServiceError):
    pass


@problem(410, "flow-expired", "This sign-in has expired or was already completed; start again")
class FlowExpired(FlowError):
    """Unknown, expired, completed, or started by another browser: deliberately one answer."""


@problem(401, "mfa-required", "A second factor is needed to finish signing in")
class MfaRequired(FlowError):
    """The password was right and the account has a second factor (or must enrol one).

    ``flow_id`` continues the sign-in at ``POST /v1/auth/login/mfa`` (once, before it
    expires); ``methods`` are the factors it takes; ``webauthn`` the options for a passkey.
    """

    def __init__(
        self,
        flow_id: str,
        methods: list[str],
        expires_in: int,
        *,
        enrolment: bool = False,
        webauthn: dict[str, Any] | None = None,
    ) -> None:
        super().__init__("second factor required")
        self.flow_id = flow_id
        self.methods = methods
        self.expires_in = expires_in
        self.enrolment = enrolment
        self.webauthn = webauthn

    def extensions(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "flow_id": self.flow_id,
            "methods": self.methods,
            "expires_in": self.expires_in,
        }
        if self.enrolment:
            found["enrolment_required"] = True
        if self.webauthn is not None:
            found["webauthn"] = self.webauthn
        return found
