"""Traces of a real server exported over OTLP/HTTP: one login's parent/child chain."""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path

import httpx

from tests.integration.observability.otlp_receiver import OtlpReceiver
from tests.support.server import Server, base_env, migrate

PASSWORD = "Tr0ub4dor&3-horse"
SERVER_KIND = 2  # opentelemetry.proto.trace.v1.Span.SPAN_KIND_SERVER


def test_login_trace_chain(tmp_path: Path, redis_url: str) -> None:
    trace_id = secrets.token_hex(16)
    caller_span = secrets.token_hex(8)
    with OtlpReceiver() as receiver:
        env = base_env(
            tmp_path,
            f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}",
            AUTH_REDIS__URL=redis_url,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_SERVICE_NAME="auth-service-test",
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_TRACES_SAMPLER="parentbased_always_on",
        )
        migrate(tmp_path, env)
        with Server(tmp_path, env) as server:
            email = f"tr-{uuid.uuid4().hex[:8]}@example.com"
            r = httpx.post(
                f"{server.url}/v1/auth/register",
                json={"email": email, "password": PASSWORD},
                timeout=30,
            )
            assert r.status_code == 202
            # W3C trace context in: the server continues our trace under our span.
            r = httpx.post(
                f"{server.url}/v1/auth/login",
                json={"email": email, "password": PASSWORD},
                headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
                timeout=30,
            )
            assert r.status_code == 200
            spans = receiver.wait_for(trace_id, {"password.verify", "token.sign"})
            logs = server.logs()

    by_id = {s.span_id: s for s in spans}
    servers = [s for s in spans if s.kind == SERVER_KIND]
    assert len(servers) == 1, [s.name for s in spans]
    http_span = servers[0]
    assert http_span.parent_span_id == caller_span
    assert http_span.service == "auth-service-test"
    assert "/v1/auth/login" in http_span.name  # the route template, never a raw path

    def parent_of(name: str) -> str:
        matches = [s for s in spans if s.name == name]
        assert matches, name
        return by_id[matches[0].parent_span_id].span_id

    # HTTP server span -> password hash (run in a thread pool), -> token signing.
    assert parent_of("password.verify") == http_span.span_id
    assert parent_of("token.sign") == http_span.span_id
    db_spans = [
        s
        for s in spans
        if s.attributes.get("db.system", s.attributes.get("db.system.name")) == "sqlite"
    ]
    assert db_spans, [s.name for s in spans]
    assert {s.parent_span_id for s in db_spans} == {http_span.span_id}
    redis_spans = [s for s in spans if s.attributes.get("db.system") == "redis"]
    assert redis_spans, "rate limiting and lockout go to Redis: their commands are spans"
    # No statement parameter (email, hash) was recorded on a DB span.
    for s in db_spans:
        assert email not in json.dumps(s.attributes, default=str)

    # Log lines of that request carry its trace and span ids.
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    access = [
        line
        for line in lines
        if line.get("log_type") == "access" and line.get("trace_id") == trace_id
    ]
    assert len(access) == 1
    assert access[0]["route"] == "/v1/auth/login"
    assert access[0]["span_id"] == http_span.span_id
    audit = [
        line
        for line in lines
        if line.get("log_type") == "audit" and line.get("trace_id") == trace_id
    ]
    assert audit, "the login audit event shares the request's trace id"
