"""OpenAPI helpers: document problem+json error responses.

A route declares the problems its own logic can answer (``responses=problem_responses(...)``).
The ones the HTTP edge answers for any route of a kind (``document_edge_problems``) are added
to every such operation, so the document lists everything a client can really get (checked by
the schemathesis run in tests/integration/fuzz/).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from auth_service.web.middleware import JSON_API_PREFIX


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
    415: "The body is not JSON",
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


_BODY_METHODS = frozenset({"post", "put", "patch"})
# FastAPI documents its own validation body (application/json); ours is a problem.
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def _edge_statuses(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    """What web/middleware.py and web/errors.py answer for any operation of this kind."""
    statuses = [413]  # Content-Length over server.max_body_bytes, whatever the method
    if method in _BODY_METHODS or "requestBody" in operation:  # DELETE /v1/users/me has one
        statuses.append(400)  # a body that cannot be parsed
        if path.startswith(JSON_API_PREFIX):
            statuses.append(415)  # a body that is not JSON
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.append(422)
    return statuses


def document_edge_problems(app: FastAPI) -> None:
    """Add the edge's problems to every operation of ``app``'s OpenAPI document."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                responses = operation.setdefault("responses", {})
                for status, response in problem_responses(
                    *_edge_statuses(path, method, operation)
                ).items():
                    current = responses.get(str(status))
                    if current is None or "application/json" in current.get("content", {}):
                        responses[str(status)] = response
        components = schema.get("components", {}).get("schemas", {})
        for name in _FASTAPI_VALIDATION:
            components.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
