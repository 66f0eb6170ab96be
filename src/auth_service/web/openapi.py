"""OpenAPI helpers: document problem+json error responses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ProblemDetails(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


_DESCRIPTIONS = {
    400: "Malformed request or invalid token",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    422: "Validation error",
    429: "Too many requests (see Retry-After)",
    503: "Overloaded or unavailable (see Retry-After)",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {
            "description": _DESCRIPTIONS.get(s, "Error"),
            "content": {"application/problem+json": {"schema": ProblemDetails.model_json_schema()}},
        }
        for s in statuses
    }
