"""Account domain errors, each with the problem it answers with (``auth_service.problems``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from auth_service.problems import ServiceError, field_errors, problem


class AccountError(ServiceError):
    """Base class."""


@problem(422, "invalid-email", "The email address is not valid")
class InvalidEmail(AccountError):
    """The email address fails syntax checks (`register`, CLI `users create`); `errors`
    gives the reason.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def extensions(self) -> dict[str, Any]:
        return field_errors("email", [self.reason])


@problem(409, "email-taken", "An account with this email exists")
class EmailTaken(AccountError):
    """Another account of the tenant has this email (compared case-insensitively)."""


@problem(422, "weak-password", "The password is not acceptable")
class WeakPassword(AccountError):
    """The password policy refuses the password (`register`, `password/change`,
    `password/reset`); `errors` lists every reason.
    """

    def __init__(self, reasons: Sequence[str], field: str = "password") -> None:
        super().__init__("; ".join(reasons))
        self.reasons = list(reasons)
        self.field = field

    def extensions(self) -> dict[str, Any]:
        return field_errors(self.field, self.reasons)


@problem(401, "invalid-credentials", "The email or password is incorrect", challenge=True)
class InvalidCredentials(AccountError):
    """Unknown email or wrong password: deliberately indistinguishable."""


@problem(429, "account-locked", "Too many failed attempts; try again later")
class AccountLocked(AccountError):
    """`login` or `password/change` while the account is locked after consecutive failures;
    `Retry-After` says when to try again. Identical for unknown emails.
    """

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("account temporarily locked")
        self.retry_after_seconds = retry_after_seconds


@problem(403, "account-disabled", "The account is disabled")
class AccountDisabled(AccountError):
    """Raised only after the correct password was presented."""


@problem(400, "invalid-one-time-token", "The link is invalid, expired or already used")
class InvalidOneTimeToken(AccountError):
    """Verification or reset token unknown, expired or already used."""


@problem(403, "feature-disabled", "This feature is switched off on this server")
class FeatureDisabled(AccountError):
    """The operator switched this flow off (``features.*``)."""

    def __init__(self, feature: str) -> None:
        super().__init__(feature)
        self.feature = feature


@problem(404, "user-not-found", "No such user")
class UserNotFound(AccountError):
    """Admin routes: no user with this id."""


@problem(409, "user-disabled", "The user is disabled")
class UserDisabled(AccountError):
    """Admin `POST /v1/admin/users/{id}/reset` (and CLI `users reset`) for a disabled user: a
    disabled account gets no reset link; enable it first."""


@problem(409, "last-admin", "The change would leave no active administrator")
class LastAdmin(AccountError):
    """The change would leave the tenant without an active administrator."""
