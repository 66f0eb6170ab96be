"""Account domain errors. Mapped to HTTP only in web/errors.py."""

from __future__ import annotations


class AccountError(Exception):
    """Base class."""


class InvalidEmail(AccountError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EmailTaken(AccountError):
    """Another account of the tenant has this email (compared case-insensitively)."""


class WeakPassword(AccountError):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class InvalidCredentials(AccountError):
    """Unknown email or wrong password: deliberately indistinguishable."""


class AccountLocked(AccountError):
    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("account temporarily locked")
        self.retry_after_seconds = retry_after_seconds


class AccountDisabled(AccountError):
    """Raised only after the correct password was presented."""


class InvalidOneTimeToken(AccountError):
    """Verification or reset token unknown, expired or already used."""


class FeatureDisabled(AccountError):
    """The operator switched this flow off (``features.*``)."""

    def __init__(self, feature: str) -> None:
        super().__init__(feature)
        self.feature = feature


class UserNotFound(AccountError):
    pass


class LastAdmin(AccountError):
    """The change would leave the tenant without an active administrator."""
