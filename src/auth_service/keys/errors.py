"""Key and token errors."""

from auth_service.problems import ServiceError, problem


class KeyManagementError(ServiceError):
    """Base for key management errors."""


@problem(503, "no-signing-key", "No signing key is available")
class NoActiveKey(KeyManagementError):
    """No signing key is active; run `auth-service keys rotate` or restart to create one."""


class InvalidToken(Exception):
    """An access token failed verification. ``reason`` is for logs, never for clients."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
