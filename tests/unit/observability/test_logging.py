from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY
from starlette.types import Receive, Scope, Send

from auth_service.config.settings import Environment, LoggingSettings
from auth_service.observability import logging as log_module
from auth_service.observability.logging import (
    REDACTED,
    AccessLog,
    configure_logging,
    flush_access_log,
    redact,
    set_log_level,
)
from auth_service.observability.tracing import endpoint_configured
from auth_service.web.middleware import RequestContextMiddleware, parse_networks
from tests.support.wait import async_wait_for


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abc.def-ghi",
        "basic dXNlcjpwYXNzd29yZA==",
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
        "token " + "A" * 43,
        "postgresql+asyncpg://app:s3cr3t-pw@db:5432/auth",
        "GET /reset?token=s3cr3t-pw&x=1",
    ],
)
def test_secrets_in_free_text_are_redacted(text: str) -> None:
    out = redact(None, "info", {"event": "x", "message": text})
    assert REDACTED in out["message"]
    for secret in ("abc.def-ghi", "dXNlcjpwYXNzd29yZA", "c2lnbmF0dXJl", "A" * 43, "s3cr3t-pw"):
        assert secret not in out["message"]


def test_library_messages_are_redacted_too() -> None:
    """A stdlib logger's record arrives with its whole message as the event."""
    out = redact(
        None, "warning", {"event": "GET https://idp.example/cb?code=s3cr3t-code&state=x failed"}
    )
    assert "s3cr3t-code" not in out["event"]
    assert REDACTED in out["event"]
    assert redact(None, "info", {"event": "login_succeeded"})["event"] == "login_succeeded"


def test_http_client_request_lines_are_not_logged() -> None:
    """httpx logs every request's URL (webhook URLs, tokens in links) at INFO."""
    for chatty in ("httpx", "httpcore"):
        assert not logging.getLogger(chatty).isEnabledFor(logging.INFO)


def test_sensitive_keys_are_redacted_at_any_depth() -> None:
    out = redact(
        None,
        "info",
        {
            "event": "x",
            "password": "p",
            "headers": {"Authorization": "x", "Cookie": "c", "accept": "json"},
            "items": [{"refresh_token": "t", "otp": "1"}],
            "database_dsn": "d",
            "route": "/v1/auth/login",
        },
    )
    assert out["password"] == REDACTED
    assert out["headers"] == {"Authorization": REDACTED, "Cookie": REDACTED, "accept": "json"}
    assert out["items"] == [{"refresh_token": REDACTED, "otp": REDACTED}]
    assert out["database_dsn"] == REDACTED
    assert out["route"] == "/v1/auth/login"


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    structlog.get_logger("inner").info("inside")
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _call(mw: RequestContextMiddleware, path: str) -> None:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": path,
        "headers": [(b"x-request-id", b"req-123")],
        "client": ("127.0.0.1", 1),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(_message: Any) -> None:
        return

    await mw(scope, receive, send)


async def test_one_access_line_per_request_and_probes_excluded() -> None:
    mw = RequestContextMiddleware(_app)
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        await _call(mw, "/v1/thing")
        await _call(mw, "/health/ready")
        await _call(mw, "/metrics")
    access = [line for line in logs if line.get("log_type") == "access"]
    assert len(access) == 1
    assert access[0]["status"] == 204
    assert access[0]["request_id"] == "req-123"
    inner = [line for line in logs if line["event"] == "inside"]
    assert len(inner) == 3
    assert all(line["request_id"] == "req-123" and "tenant" in line for line in inner)

    with structlog.testing.capture_logs() as logs:
        probes = AccessLog(LoggingSettings(access_log_probes=True))
        await _call(RequestContextMiddleware(_app, access_log=probes), "/health/ready")
    assert [line["log_type"] for line in logs if "log_type" in line] == ["access"]


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_is_on_only_with_an_endpoint(env: dict[str, str], on: bool) -> None:
    assert endpoint_configured(env) is on


async def _app_binding_a_secret(scope: Scope, receive: Receive, send: Send) -> None:
    structlog.contextvars.bind_contextvars(password="hunter2-hunter2")
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    """Put back the suite's logging (tests/conftest.py sends it to the captured log file)."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    fast = log_module._json_access
    try:
        yield
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(root_level)
        log_module._json_access = fast


@pytest.mark.parametrize("level", ["INFO", "WARNING"])
async def test_json_access_line_fast_path(level: str) -> None:
    """The access line skips structlog's per-call machinery in JSON mode but keeps its
    fields, its level filter and its redaction."""
    out = io.StringIO()
    with _logging_restored():
        configure_logging(LoggingSettings(format="json", level=level), Environment.production, out)
        await _call(RequestContextMiddleware(_app_binding_a_secret), "/v1/thing")
        set_log_level("INFO")
        await _call(RequestContextMiddleware(_app_binding_a_secret), "/v1/thing")
        flush_access_log()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    access = [line for line in lines if line.get("log_type") == "access"]
    # At WARNING the first request writes nothing; the level change applies to the second.
    assert len(access) == (2 if level == "INFO" else 1)
    line = access[-1]
    assert line["event"] == "request"
    assert line["level"] == "info"
    assert line["status"] == 201
    assert line["method"] == "GET"
    assert line["route"] == "unmatched"
    assert line["request_id"] == "req-123"
    assert line["client_ip"] == "127.0.0.1"
    assert "tenant" in line
    assert isinstance(line["duration_ms"], float)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["timestamp"])
    # Exactly the documented fields; context bound by the handler stays on its own lines.
    assert set(line) == {
        "log_type",
        "method",
        "route",
        "status",
        "duration_ms",
        "client_ip",
        "event",
        "request_id",
        "tenant",
        "level",
        "timestamp",
    }
    assert "hunter2" not in out.getvalue()


async def test_unknown_methods_share_one_metric_series() -> None:
    async def call(method: str) -> None:
        scope: dict[str, Any] = {"type": "http", "method": method, "path": "/x", "headers": []}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(_message: Any) -> None:
            return

        await RequestContextMiddleware(_app)(scope, receive, send)

    for method in ("BREW", "PROPFIND", "X" * 40):
        await call(method)
    sample = REGISTRY.get_sample_value(
        "auth_http_requests_total", {"method": "other", "route": "unmatched", "status_class": "2xx"}
    )
    assert sample is not None
    assert sample >= 3
    assert (
        REGISTRY.get_sample_value(
            "auth_http_requests_total",
            {"method": "BREW", "route": "unmatched", "status_class": "2xx"},
        )
        is None
    )


async def test_json_access_line_from_hostile_input_is_valid_and_clean() -> None:
    out = io.StringIO()
    scope: dict[str, Any] = {
        "type": "http",
        "method": 'GET"}, {"x',
        "path": "/v1/thing",
        "headers": [
            (b"x-request-id", b'abc"}\n{"injected": 1'),
            (b"x-forwarded-for", b'1.2.3.4", "x'),
        ],
        "client": ("10.0.0.1", 1),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(_message: Any) -> None:
        return

    with _logging_restored():
        configure_logging(LoggingSettings(format="json"), Environment.production, out)
        middleware = RequestContextMiddleware(_app, trusted_proxies=parse_networks(["10.0.0.0/8"]))
        await middleware(scope, receive, send)
        flush_access_log()
    access = [json.loads(line) for line in out.getvalue().splitlines() if '"access"' in line]
    assert len(access) == 1
    line = access[0]
    assert line["method"] == "other"
    assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])
    assert line["client_ip"] == "10.0.0.1"  # an unparsable forwarded hop is not believed
    assert "injected" not in out.getvalue()


async def test_batched_access_lines_keep_the_stream_in_order() -> None:
    out = io.StringIO()
    with _logging_restored():
        configure_logging(LoggingSettings(format="json"), Environment.production, out)
        await _call(RequestContextMiddleware(_app), "/v1/first")  # logs "inside", then access
        assert '"access"' not in out.getvalue()  # batched...
        structlog.get_logger("after").warning("later_line")  # ...until any other line
        text = out.getvalue()
        assert text.index('"access"') < text.index("later_line")
        await _call(RequestContextMiddleware(_app), "/v1/second")
        assert out.getvalue().count('"access"') == 1  # batched...
        # ...until the timer (ACCESS_FLUSH_SECONDS) writes it, with no other line to wait for.
        await async_wait_for(lambda: out.getvalue().count('"access"') == 2, 5, "the timer")


class _YieldingStream(io.StringIO):
    """A stream that gives up the GIL on every write, as a pipe to a busy log shipper does:
    the moment another thread's write can land between two writes of one line."""

    def write(self, text: str) -> int:
        written = super().write(text)
        time.sleep(0)
        return written


def test_lines_from_several_threads_stay_whole() -> None:
    """structlog, the stdlib handler (the OTLP exporter's urllib3 logs from its own thread) and
    the batched access lines share one stream: every line must come out whole."""
    out = _YieldingStream()
    per_thread = 200
    with _logging_restored():
        configure_logging(
            LoggingSettings(format="json", level="DEBUG"), Environment.production, out
        )

        def structured(n: int) -> None:
            for i in range(per_thread):
                structlog.get_logger("t").info("structured", thread=n, i=i)

        def stdlib(n: int) -> None:
            for i in range(per_thread):
                logging.getLogger("urllib3.connectionpool").debug("stdlib %d %d", n, i)

        def access(n: int) -> None:
            for i in range(per_thread):
                log_module.log_access(("GET", "/x", 200, 1.0, None, f"r{n}-{i}", "default"))

        threads = [
            threading.Thread(target=fn, args=(n,))
            for n, fn in enumerate((structured, stdlib, access, structured, stdlib))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        flush_access_log()
    lines = out.getvalue().splitlines()
    broken = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            broken.append(line)
    assert not broken, broken[:3]
    assert len(lines) == 5 * per_thread
