"""Expected failures of the jobs domain, each with its problem type."""

from __future__ import annotations

from typing import Any

from auth_service.problems import ServiceError, problem


class JobError(ServiceError):
    """Base of the jobs domain's expected failures."""


@problem(404, "job-not-found", "No such job")
class JobNotFound(JobError):
    """Admin job routes: no job with this id."""


@problem(409, "job-not-dead", "Only a dead job can be retried or discarded")
class JobNotDead(JobError):
    """Retry or discard of a job that is not dead (queued, running or done); ``state`` says
    which it is."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state

    def extensions(self) -> dict[str, Any]:
        return {"state": self.state}
