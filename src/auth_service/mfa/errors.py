"""MFA errors, each with the problem it answers with."""

from __future__ import annotations

from typing import Any

from auth_service.problems import ServiceError, problem


class MfaError(ServiceError):
    pass


@problem(401, "invalid-factor", "The code or passkey was not accepted")
class InvalidFactor(MfaError):
    """Wrong, reused or expired code; unknown, refused or cloned passkey: one answer."""


@problem(404, "factor-not-found", "No such factor")
class FactorNotFound(MfaError):
    """`/v1/mfa`: no such passkey of the caller, or no authenticator app to remove."""


@problem(409, "factor-exists", "An authenticator app is set up already; remove it first")
class FactorExists(MfaError):
    """`POST /v1/mfa/totp` while a confirmed authenticator app is set up: remove it first."""


@problem(409, "factor-not-pending", "There is no enrolment waiting for a first code")
class NothingToConfirm(MfaError):
    """`POST /v1/mfa/totp/confirm` without an enrolment started: set it up again."""


@problem(403, "factor-disabled", "This kind of factor is switched off on this server")
class FactorDisabled(MfaError):
    """Passkeys are switched off on this server (`mfa.enabled`, `mfa.passkeys`)."""


@problem(422, "invalid-passkey-name", "A passkey name is 1 to 64 printable characters")
class InvalidPasskeyName(MfaError):
    """Adding or renaming a passkey with an empty, too long or control-character name."""


@problem(403, "step-up-required", "This needs a stronger or more recent sign-in")
class StepUpRequired(MfaError):
    """The session's ``acr`` or ``auth_time`` does not satisfy the operation's rule: sign in
    again (with a second factor when ``acr`` says so), then retry."""

    def __init__(self, *, acr: str | None, max_age: int | None) -> None:
        super().__init__("step-up required")
        self.acr = acr
        self.max_age = max_age

    def extensions(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.acr:
            found["required_acr"] = self.acr
        if self.max_age is not None:
            found["max_age"] = self.max_age
        return found
