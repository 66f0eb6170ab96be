"""Session domain errors, each with the problem it answers with (``auth_service.problems``)."""

from __future__ import annotations

from auth_service.problems import ServiceError, problem


class SessionError(ServiceError):
    pass


@problem(401, "invalid-refresh-token", "The refresh token is invalid or expired", challenge=True)
class InvalidRefreshToken(SessionError):
    """Unknown, expired or revoked refresh token (or its session)."""


@problem(
    401,
    "refresh-token-reused",
    "The refresh token was already used; the session has been revoked",
    challenge=True,
)
class RefreshTokenReused(SessionError):
    """A spent refresh token was presented again; its session is now revoked."""


@problem(404, "session-not-found", "No such session")
class SessionNotFound(SessionError):
    """No live session with this id for this user."""


@problem(400, "dpop-key-required", "This refresh token is bound to a DPoP key: prove that key")
class DPoPKeyRequired(SessionError):
    """Refresh of a session opened with a DPoP proof, without a `DPoP` proof or with a proof
    by another key; nothing is spent."""
