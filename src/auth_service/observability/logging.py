"""structlog configuration: JSON lines in production, readable console in development.

A redaction processor runs last before rendering, so no password, token, authorization header
or key reaches the output whatever a caller logs.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import logging
import re
import sys
import threading
import time
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any, TextIO

import structlog

from auth_service.config.settings import Environment, LoggingSettings
from auth_service.observability import tracing
from auth_service.observability.tracing import current_trace_ids, log_correlation

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
# Never scrubbed: values we generate. Not "event": a library's log record arrives with its
# whole message there (a URL with a token, a DSN in an exception); our own event names are
# short words that the cheap check of _scrub_text passes at once.
_SAFE_KEYS = frozenset(
    {
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


class _LineWriter:
    """The one writer of the log stream: every line goes out in one write, under one lock.

    Three writers share the stream: structlog, the stdlib handler (libraries log from their
    own threads, the OTLP exporter's urllib3 among them) and the batched access lines.
    structlog's ``PrintLogger`` writes a line and its newline separately under a lock of its
    own, so another thread's line could land between them: two JSON objects on one line.
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            return self._out.write(text)

    def flush(self) -> None:
        with self._lock:
            self._out.flush()


class AccessLog:
    """The access log's switches (``logging.access_log``, ``logging.access_log_probes``).

    One object per app, read by the request middleware on every request and updated in place
    by hot reload (``Runtime``), like the CORS policy.
    """

    def __init__(self, settings: LoggingSettings | None = None) -> None:
        self.apply_settings(settings or LoggingSettings())

    def apply_settings(self, settings: LoggingSettings) -> None:
        self.enabled = settings.access_log
        self.probes = settings.access_log_probes


_access_logger = structlog.get_logger("auth_service.access")


# Access lines are batched: written together when this many are waiting or this long after
# the first of them, and before any other log line (so the stream keeps its order). With
# PYTHONUNBUFFERED=1, usual in containers, each write to stdout would be a system call.
ACCESS_BATCH_LINES = 64
ACCESS_FLUSH_SECONDS = 0.2
_json_str = json.encoder.encode_basestring_ascii
# Pre-encoded line heads kept (cleared when full: a safety bound, never reached by templates).
_MAX_HEADS = 4096


class _JsonAccessLines:
    """The access line in JSON output, written without structlog's generic machinery.

    There is one access line per request, so on a cheap endpoint it was most of what
    observability cost (a lazy logger proxy, a bound logger, a processor loop, a dict and
    ``json.dumps``, then a flush: ~20 µs a line; this is ~3 µs, bench/observability/README.md).
    The line has the same keys and text as the processor chain would give it, but exactly the
    documented fields: every value is safe by construction (method from a fixed set, route
    template, validated IP and request id, tenant, hex trace ids), so no redaction pass is
    needed; other context bound to the request appears on the request's other lines.

    Used only while structlog still runs the processors and output ``configure_logging``
    installed: a test's ``capture_logs`` (or any reconfiguration) sends lines through
    structlog again.
    """

    def __init__(self, out: TextIO, processors: list[Any], factory: Any, level: str) -> None:
        self.out = out
        self.processors = list(processors)
        self.factory = factory
        self.set_level(level)
        self._second = -1
        self._prefix = ""
        self._lines: list[str] = []
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        self._flush_pending = False
        self._heads: dict[tuple[str, str, int], str] = {}

    def set_level(self, level: str) -> None:
        self.enabled = logging.getLevelName(level) <= logging.INFO

    def active(self) -> bool:
        # structlog's configuration object read directly: get_config() builds a dict per call.
        config = getattr(structlog._config, "_CONFIG", None)
        if config is None:  # pragma: no cover - a structlog without the private object
            public = structlog.get_config()
            factory, processors = public["logger_factory"], public["processors"]
        else:
            factory, processors = config.logger_factory, config.default_processors
        # Processors compared by content: ``capture_logs`` edits the configured list in place.
        return bool(factory is self.factory and processors == self.processors)

    def _timestamp(self) -> str:
        # The same text as TimeStamper(fmt="iso", utc=True), formatted once per second.
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"

    def _head(self, method: str, route: str, status: int) -> str:
        """The line up to the duration's value, encoded once per (method, route, status):
        bounded like the HTTP metrics' series (methods normalised, routes are templates)."""
        key = (method, route, status)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= _MAX_HEADS:
                self._heads.clear()
            head = self._heads[key] = (
                f'{{"log_type": "access", "method": {_json_str(method)}, '
                f'"route": {_json_str(route)}, "status": {int(status)}, "duration_ms": '
            )
        return head

    def write(self, line: AccessLine) -> None:
        if not self.enabled:
            return
        method, route, status, duration_ms, client_ip, request_id, tenant = line
        ids = current_trace_ids() if tracing.enabled() else None  # no spans: no ids
        correlation = f', "trace_id": "{ids[0]}", "span_id": "{ids[1]}"' if ids else ""
        self._lines.append(
            f"{self._heads.get((method, route, status)) or self._head(method, route, status)}"
            f"{float(duration_ms)!r}, "
            f'"client_ip": {"null" if client_ip is None else _json_str(client_ip)}, '
            f'"event": "request", "request_id": {_json_str(request_id)}, '
            f'"tenant": {_json_str(tenant)}{correlation}, "level": "info", '
            f'"timestamp": "{self._timestamp()}"}}\n'
        )
        if len(self._lines) >= ACCESS_BATCH_LINES:
            self.flush()
        else:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to flush later: flush now
            self.flush()
            return
        if self._flush_pending and self._flush_loop is loop:
            return
        self._flush_loop, self._flush_pending = loop, True
        loop.call_later(ACCESS_FLUSH_SECONDS, self._timer)

    def _timer(self) -> None:
        self._flush_pending = False
        self.flush()

    def flush(self) -> None:
        """Write the waiting lines (any thread: the list is swapped, not shared)."""
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stream
            self.out.write("".join(lines))
            self.out.flush()


_json_access: _JsonAccessLines | None = None

# method, route template, status, duration in ms, client IP, request id, tenant
AccessLine = tuple[str, str, int, float, str | None, str, str]


@atexit.register
def flush_access_log() -> None:
    """Write the batched access lines now (also at exit and before any other log line)."""
    fast = _json_access
    if fast is not None:
        fast.flush()


def flush_access_lines(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: batched access lines go out before this line does."""
    fast = _json_access
    if fast is not None and fast._lines:
        fast.flush()
    return event_dict


def log_access(line: AccessLine) -> None:
    """Write the access line of a request (``event`` is ``request``, ``log_type`` ``access``)."""
    fast = _json_access
    if fast is not None and fast.active():
        fast.write(line)
        return
    method, route, status, duration_ms, client_ip, _request_id, _tenant = line
    # request_id and tenant are bound to the request's context (merge_contextvars).
    _access_logger.info(
        "request",
        log_type="access",
        method=method,
        route=route,
        status=status,
        duration_ms=duration_ms,
        client_ip=client_ip,
    )


def set_log_level(level: str) -> None:
    """Change the level without re-creating handlers (keeps wherever logs are going)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
    logging.getLogger().setLevel(level)
    if _json_access is not None:
        _json_access.flush()  # lines of requests served before the change go out first
        _json_access.set_level(level)


def configure_logging(
    settings: LoggingSettings, env: Environment, stream: TextIO | None = None
) -> None:
    """Configure structlog and the stdlib root logger; ``stream`` defaults to stdout
    (the CLI passes stderr so command output stays clean)."""
    global _json_access
    out: TextIO = _LineWriter(stream or sys.stdout)  # type: ignore[assignment]
    fmt = settings.format
    if fmt == "auto":
        fmt = "console" if env is Environment.development and sys.stderr.isatty() else "json"
    flush_access_log()  # lines batched for the previous configuration's stream
    shared: list[Any] = [
        flush_access_lines,
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
    processors = [*shared, exc, redact, renderer]
    # WriteLogger writes the line and its newline in one call (PrintLogger does two).
    factory = structlog.WriteLoggerFactory(out)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(settings.level),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
    _json_access = None
    if fmt == "json":
        _json_access = _JsonAccessLines(out, processors, factory, settings.level)
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
    # httpx and httpcore log every request's full URL at INFO and DEBUG: the URLs of webhook
    # alert channels (a Slack webhook URL is its secret), of upstream identity providers'
    # callbacks and of emailed links carry secrets. Our own log lines say what was called.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
