"""Flow errors, each with the problem it answers with."""

from __future__ import annotations

from auth_service.problems import ServiceError, problem


class FlowError(ServiceError):
    pass


@problem(410, "flow-expired", "This sign-in has expired or was already completed; start again")
class FlowExpired(FlowError):
    """Unknown, expired, completed, or started by another browser: deliberately one answer."""
