from __future__ import annotations

from typing import Any

import pytest
import structlog
from starlette.types import Receive, Scope, Send

from auth_service.observability.logging import REDACTED, redact
from auth_service.observability.tracing import endpoint_configured
from auth_service.web.middleware import RequestContextMiddleware


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
        await _call(RequestContextMiddleware(_app, access_log_probes=True), "/health/ready")
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
