"""structlog configuration: JSON lines in production, readable console in development.

A redaction processor runs last before rendering, so no password, token, authorization header
or key reaches the output whatever a caller logs.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any, TextIO

import structlog

from auth_service.config.settings import Environment, LoggingSettings
from auth_service.observability.tracing import log_correlation

REDACTED = "[REDACTED]"
_SENSITIVE_KEY = re.compile(
    r"pass(word)?|secret|token|authorization|cookie|api[_-]?key|private|master[_-]?key|hash"
    r"|credential|jwt|otp|dsn|signature",
    re.IGNORECASE,
)
# Bearer/Basic credentials, JWTs, long opaque tokens, passwords in URLs and secret query
# parameters inside free text (exception messages, URLs, headers logged by libraries).
_SENSITIVE_VALUE = re.compile(
    r"(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]+"
    r"|eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"
    r"|(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43,}(?![A-Za-z0-9_-])"
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"
)
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:token|code|password|refresh_token|access_token|key|secret)=)[^&\s\"']+"
)
_SAFE_KEYS = frozenset(
    {
        "event",
        "request_id",
        "trace_id",
        "span_id",
        "session_id",
        "kid",
        "logger",
        "level",
        "route",
        "tenant",
        "log_type",
    }
)

# The ASGI scope of the request being served, so every line of a request can name its route
# (known only once the router matched, after the request's first lines may have been bound).
current_scope: ContextVar[MutableMapping[str, Any] | None] = ContextVar(
    "current_scope", default=None
)


def add_route(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the route template of the request this line belongs to."""
    if "route" not in event_dict:
        scope = current_scope.get()
        route = scope.get("route") if scope is not None else None
        path = getattr(route, "path", None)
        if path is not None:
            event_dict["route"] = path
    return event_dict


# A string shorter than an opaque token, without whitespace, "=", "@" or a JWT header cannot
# match any pattern above: it skips both substitutions (most values of an access line).
_MAYBE_SENSITIVE = re.compile(r"[\s=@]|eyJ")
_OPAQUE_TOKEN_LENGTH = 43


def _scrub_text(value: str) -> str:
    if len(value) < _OPAQUE_TOKEN_LENGTH and _MAYBE_SENSITIVE.search(value) is None:
        return value
    return _SECRET_PARAM.sub(r"\1" + REDACTED, _SENSITIVE_VALUE.sub(REDACTED, value))


@functools.lru_cache(maxsize=1024)
def _sensitive_key(key: str) -> bool:
    return _SENSITIVE_KEY.search(key) is not None


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, dict):
        return {k: REDACTED if _sensitive_key(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key in _SAFE_KEYS:
            continue
        if _sensitive_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


class _StderrProxy:
    """Writes to whatever ``sys.stderr`` is at the time of the write.

    Binding the object itself would keep writing to a stream that a test runner (or an
    embedding program) has since swapped out and closed.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


STDERR: TextIO = _StderrProxy()  # type: ignore[assignment]


def configure_logging(
    settings: LoggingSettings, env: Environment, stream: TextIO | None = None
) -> None:
    """Configure structlog and the stdlib root logger; ``stream`` defaults to stdout
    (the CLI passes stderr so command output stays clean)."""
    out = stream or sys.stdout
    fmt = settings.format
    if fmt == "auto":
        fmt = "console" if env is Environment.development and sys.stderr.isatty() else "json"
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_route,
        log_correlation,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        exc = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
    else:
        renderer = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        exc = structlog.processors.ExceptionRenderer()
    structlog.configure(
        processors=[*shared, exc, redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(settings.level)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Route the standard library (uvicorn, sqlalchemy warnings) through the same output.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact,
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # aiosqlite logs every statement with its parameters (password hashes, token digests) at
    # DEBUG; those must not reach output even when an operator turns DEBUG on.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
