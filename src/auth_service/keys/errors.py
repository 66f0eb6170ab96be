"""Key and token errors."""


class KeyError_(Exception):
    """Base for key management errors."""


class NoActiveKey(KeyError_):
    """No signing key is active; run `auth-service keys rotate` or restart to create one."""


class InvalidToken(Exception):
    """An access token failed verification. ``reason`` is for logs, never for clients."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
