"""Problem Details for HTTP APIs (RFC 9457): every 4xx/5xx answered in this one place.

A domain's exception carries its problem (``auth_service.problems``); this module turns any
of them into a response without knowing the domain. Validation errors never echo the
submitted values (they may be passwords).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from auth_service.db.errors import unavailable
from auth_service.problems import PROBLEM_BASE, Problem, ServiceError, define

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
_CHALLENGE = 'Bearer realm="auth-service"'

__all__ = [
    "PROBLEM_BASE",
    "PROBLEM_JSON",
    "ApiProblem",
    "HTTPProblem",
    "Problem",
    "problem_response",
]


class ApiProblem(Exception):
    """Raised by the web layer itself (authentication, authorisation, request shape)."""

    def __init__(
        self, problem: Problem, detail: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(problem.slug)
        self.problem = problem
        self.detail = detail
        self.headers = headers or {}


class HTTPProblem(StarletteHTTPException):
    """A web-layer problem raised where only an ``HTTPException`` gets through: FastAPI
    re-raises those while it reads a body and turns any other exception into a bare 400."""

    def __init__(self, problem: Problem, detail: str | None = None) -> None:
        super().__init__(problem.status, detail)
        self.problem = problem
        self.problem_detail = detail


# The problems of the HTTP layer itself; each domain defines its own beside its exceptions.
BAD_REQUEST = define(
    400,
    "malformed-request",
    "The request could not be parsed",
    description='The body is not JSON or not valid UTF-8 (`errors: [{field: "body", ...}]`); '
    "or the HTTP request itself cannot be parsed (a non-numeric `Content-Length`, "
    "`Content-Length` with `Transfer-Encoding`, a control character in a header): answered "
    "before any route runs, and the connection is closed.",
)
VALIDATION = define(
    422,
    "validation-error",
    "The request is not valid",
    description="Body, path or query fails the schema: a missing, unknown, too long or "
    "wrongly typed field, a control character (U+0000 to U+001F, U+007F) in any string, a "
    "bad UUID, a date-time that is not RFC 3339 with a zone. `errors[].field` is the dotted "
    "location (`email`, `roles.0`, `path.session_id`, `query.since`).",
)
UNAUTHENTICATED = define(
    401,
    "unauthenticated",
    "Authentication is required",
    challenge=True,
    description="Bearer route without a usable `Authorization: Bearer` (or `DPoP`) header.",
)
INVALID_TOKEN = define(
    401,
    "invalid-token",
    "The access token is not valid",
    challenge=True,
    description="Bearer route with an access token that fails verification, or whose "
    "session has ended.",
)
FORBIDDEN = define(
    403,
    "forbidden",
    "You are not allowed to do this",
    description="Admin route without the `admin` role (or the caller is not active).",
)
NOT_FOUND = define(
    404,
    "not-found",
    "Not found",
    description="No such route (a trailing slash is not redirected), or a WebSocket upgrade.",
)
METHOD_NOT_ALLOWED = define(
    405,
    "method-not-allowed",
    "Method not allowed",
    description="The path exists, the method does not; `Allow` lists every method of the "
    "path. `HEAD` is allowed wherever `GET` is.",
)
PAYLOAD_TOO_LARGE = define(
    413,
    "payload-too-large",
    "The request body is too large",
    description="Body over `server.max_body_bytes`, by `Content-Length` or while streaming; "
    "`detail` gives the limit.",
)
UNSUPPORTED_MEDIA = define(
    415,
    "unsupported-media-type",
    "Send application/json",
    description="A `POST`, `PUT` or `PATCH` body to the JSON API (`/v1/`) that is not "
    "`application/json` (or `*+json`), or has no `Content-Type`.",
)
CORS_REFUSED = define(
    403,
    "cors-not-allowed",
    "This cross-origin request is not allowed",
    description="A CORS preflight whose origin, method or headers `server.cors_origins` "
    "does not allow; `detail` says which. No `Access-Control-*` header is granted.",
)
INTERNAL = define(
    500,
    "internal-error",
    "Internal server error",
    description="An unexpected error; the body says nothing more, the log has the request id.",
)
UNAVAILABLE = define(
    503,
    "service-unavailable",
    "The service is temporarily unavailable",
    description="Any other framework-level 503.",
)

# The framework's own HTTPExceptions (routing, body parsing) by status.
_STATUS: dict[int, Problem] = {
    400: BAD_REQUEST,
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    413: PAYLOAD_TOO_LARGE,
    415: UNSUPPORTED_MEDIA,
    500: INTERNAL,
    503: UNAVAILABLE,
}


def _framework_problem(status: int) -> Problem:
    """Every answer is a problem of the catalogue: a status no entry has (a framework
    change) becomes the generic problem of its class, logged so that it gets an entry."""
    problem = _STATUS.get(status)
    if problem is None:
        log.warning("unmapped_http_status", status=status)
        problem = BAD_REQUEST if status < 500 else INTERNAL
    return problem


def problem_response(
    problem: Problem,
    request_path: str | None = None,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + problem.slug,
        "title": problem.title,
        "status": problem.status,
    }
    if detail:
        body["detail"] = detail
    if request_path:
        body["instance"] = request_path
    body.update(extensions)
    all_headers = {"Cache-Control": "no-store"}
    all_headers.update(headers or {})
    return JSONResponse(
        body, status_code=problem.status, headers=all_headers, media_type=PROBLEM_JSON
    )


def _service_error_parts(exc: ServiceError) -> tuple[dict[str, str], dict[str, Any]]:
    headers: dict[str, str] = {}
    if exc.retry_after_seconds is not None:
        headers["Retry-After"] = str(exc.retry_after_seconds)
    if exc.problem.challenge:
        headers["WWW-Authenticate"] = _CHALLENGE
    return headers, exc.extensions()


def _validation_errors(exc: RequestValidationError) -> tuple[Problem, list[dict[str, Any]]]:
    errors: list[dict[str, Any]] = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return BAD_REQUEST, [{"field": "body", "reasons": ["malformed JSON"]}]
        if err.get("type") == "string_unicode":
            # A lone surrogate: json.loads lets encoded surrogates (invalid UTF-8) through.
            return BAD_REQUEST, [{"field": "body", "reasons": ["invalid UTF-8"]}]
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        errors.append(
            {"field": ".".join(loc) or "body", "reasons": [str(err.get("msg", "invalid"))]}
        )
    return VALIDATION, errors


_OPERATIONS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


@functools.cache
def _template(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path)))


def _allowed_methods(request: Request, fallback: str) -> str:
    """Every documented method of the request's path (RFC 9110 section 15.5.6).

    Starlette's 405 names only the first route whose path matched, and one path is often
    several routes (GET and PATCH /v1/users/me). The OpenAPI document (built once) lists them
    all; HEAD goes with GET (HeadAsGetMiddleware). Undocumented paths keep Starlette's list.
    """
    for template, item in request.app.openapi().get("paths", {}).items():
        if _template(template).fullmatch(request.url.path):
            methods = {m.upper() for m in item if m in _OPERATIONS}
            if "GET" in methods:
                methods.add("HEAD")
            return ", ".join(sorted(methods))
    return fallback


def install_error_handlers(app: FastAPI) -> None:
    async def service_error_handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        headers, extras = _service_error_parts(exc)
        return problem_response(exc.problem, request.url.path, headers=headers, **extras)

    async def api_problem_handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem_response(exc.problem, request.url.path, exc.detail, exc.headers)

    async def validation_handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problem, errors = _validation_errors(exc)
        return problem_response(problem, request.url.path, errors=errors)

    async def http_handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request, headers.get("Allow", ""))
        if isinstance(exc, HTTPProblem):
            return problem_response(exc.problem, request.url.path, exc.problem_detail, headers)
        problem = _framework_problem(exc.status_code)
        return problem_response(problem, request.url.path, headers=headers)

    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled_exception", error=type(exc).__name__, path=request.url.path, exc_info=exc
        )
        return problem_response(INTERNAL, request.url.path)

    async def database_error_handler(request: Request, exc: Exception) -> JSONResponse:
        # Database work goes through db.Database, which already raises DatabaseUnavailable;
        # this catches an outage met by code that uses the engine directly.
        outage = unavailable(exc)
        if outage is None:
            return await unhandled(request, exc)
        return await service_error_handler(request, outage)

    app.add_exception_handler(ServiceError, service_error_handler)
    app.add_exception_handler(ApiProblem, api_problem_handler)
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_handler)
    app.add_exception_handler(SQLAlchemyError, database_error_handler)
    app.add_exception_handler(Exception, unhandled)
