"""Problem Details for HTTP APIs (RFC 9457): every 4xx/5xx, mapped in this one place.

Domain exceptions carry no HTTP knowledge; this table gives each a status and a stable
``type`` URI. Validation errors never echo the submitted values (they may be passwords).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from auth_service.accounts import errors as account_errors
from auth_service.keys.errors import NoActiveKey
from auth_service.security.passwords import HashingOverloaded
from auth_service.security.ratelimit import RateLimited
from auth_service.sessions import errors as session_errors

log = structlog.get_logger(__name__)

PROBLEM_BASE = "https://auth-service.dev/problems/"
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Problem:
    status: int
    slug: str
    title: str


class ApiProblem(Exception):
    """Raised by the web layer itself (authentication, authorisation, request shape)."""

    def __init__(
        self, problem: Problem, detail: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(problem.slug)
        self.problem = problem
        self.detail = detail
        self.headers = headers or {}


# The catalogue: one entry per stable problem type (docs/api.md lists them).
BAD_REQUEST = Problem(400, "malformed-request", "The request body could not be parsed")
VALIDATION = Problem(422, "validation-error", "The request is not valid")
UNAUTHENTICATED = Problem(401, "unauthenticated", "Authentication is required")
INVALID_TOKEN = Problem(401, "invalid-token", "The access token is not valid")
FORBIDDEN = Problem(403, "forbidden", "You are not allowed to do this")
NOT_FOUND = Problem(404, "not-found", "Not found")
METHOD_NOT_ALLOWED = Problem(405, "method-not-allowed", "Method not allowed")
PAYLOAD_TOO_LARGE = Problem(413, "payload-too-large", "The request body is too large")
UNSUPPORTED_MEDIA = Problem(415, "unsupported-media-type", "Send application/json")
INTERNAL = Problem(500, "internal-error", "Internal server error")
UNAVAILABLE = Problem(503, "service-unavailable", "The service is temporarily unavailable")

DOMAIN: dict[type[Exception], Problem] = {
    account_errors.InvalidEmail: Problem(422, "invalid-email", "The email address is not valid"),
    account_errors.EmailTaken: Problem(409, "email-taken", "An account with this email exists"),
    account_errors.WeakPassword: Problem(422, "weak-password", "The password is not acceptable"),
    account_errors.InvalidCredentials: Problem(
        401, "invalid-credentials", "The email or password is incorrect"
    ),
    account_errors.AccountLocked: Problem(
        429, "account-locked", "Too many failed attempts; try again later"
    ),
    account_errors.AccountDisabled: Problem(403, "account-disabled", "The account is disabled"),
    account_errors.InvalidOneTimeToken: Problem(
        400, "invalid-one-time-token", "The link is invalid, expired or already used"
    ),
    account_errors.UserNotFound: Problem(404, "user-not-found", "No such user"),
    account_errors.FeatureDisabled: Problem(
        403, "feature-disabled", "This feature is switched off on this server"
    ),
    account_errors.LastAdmin: Problem(
        409, "last-admin", "The change would leave no active administrator"
    ),
    session_errors.InvalidRefreshToken: Problem(
        401, "invalid-refresh-token", "The refresh token is invalid or expired"
    ),
    session_errors.RefreshTokenReused: Problem(
        401,
        "refresh-token-reused",
        "The refresh token was already used; the session has been revoked",
    ),
    session_errors.SessionNotFound: Problem(404, "session-not-found", "No such session"),
    RateLimited: Problem(429, "rate-limited", "Too many requests; slow down"),
    HashingOverloaded: Problem(503, "overloaded", "The service is busy; retry shortly"),
    NoActiveKey: Problem(503, "no-signing-key", "No signing key is available"),
}

_STATUS: dict[int, Problem] = {
    400: BAD_REQUEST,
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    413: PAYLOAD_TOO_LARGE,
    415: UNSUPPORTED_MEDIA,
    503: UNAVAILABLE,
}


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


def _domain_extras(exc: Exception) -> tuple[dict[str, str], dict[str, Any]]:
    headers: dict[str, str] = {}
    extras: dict[str, Any] = {}
    retry = getattr(exc, "retry_after_seconds", None)
    if isinstance(retry, int):
        headers["Retry-After"] = str(retry)
    if isinstance(exc, account_errors.WeakPassword):
        extras["errors"] = [{"field": "password", "reasons": exc.reasons}]
    if isinstance(exc, account_errors.InvalidEmail):
        extras["errors"] = [{"field": "email", "reasons": [exc.reason]}]
    if isinstance(
        exc,
        account_errors.InvalidCredentials
        | session_errors.InvalidRefreshToken
        | session_errors.RefreshTokenReused,
    ):
        headers["WWW-Authenticate"] = 'Bearer realm="auth-service"'
    return headers, extras


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


def install_error_handlers(app: FastAPI) -> None:
    async def domain_handler(request: Request, exc: Exception) -> JSONResponse:
        problem = next(p for t, p in DOMAIN.items() if isinstance(exc, t))
        headers, extras = _domain_extras(exc)
        return problem_response(problem, request.url.path, headers=headers, **extras)

    async def api_problem_handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem_response(exc.problem, request.url.path, exc.detail, exc.headers)

    async def validation_handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problem, errors = _validation_errors(exc)
        return problem_response(problem, request.url.path, errors=errors)

    async def http_handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        problem = _STATUS.get(exc.status_code) or Problem(
            exc.status_code, "http-error", "HTTP error"
        )
        headers = dict(exc.headers or {})
        return problem_response(problem, request.url.path, headers=headers)

    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled_exception", error=type(exc).__name__, path=request.url.path, exc_info=exc
        )
        return problem_response(INTERNAL, request.url.path)

    for exc_type in DOMAIN:
        app.add_exception_handler(exc_type, domain_handler)
    app.add_exception_handler(ApiProblem, api_problem_handler)
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_handler)
    app.add_exception_handler(Exception, unhandled)
