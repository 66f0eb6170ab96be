"""Session domain errors."""


class SessionError(Exception):
    pass


class InvalidRefreshToken(SessionError):
    """Unknown, expired or revoked refresh token (or its session)."""


class RefreshTokenReused(SessionError):
    """A spent refresh token was presented again; its session is now revoked."""


class SessionNotFound(SessionError):
    """No live session with this id for this user."""
