"""Traces of a real server exported over OTLP/HTTP: one login's parent/child chain, and the
requests the layers in front of FastAPI answer (the token endpoint, ``me``)."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.integration.observability.otlp_receiver import OtlpReceiver
from tests.support.server import CLI, Server, base_env, migrate
from tests.support.wait import wait_for

PASSWORD = "Tr0ub4dor&3-horse"
SERVER_KIND = 2  # opentelemetry.proto.trace.v1.Span.SPAN_KIND_SERVER


def _env(tmp_path: Path, redis_url: str, receiver: OtlpReceiver, **otel: str) -> dict[str, str]:
    """A migrated SQLite service exporting its spans to ``receiver``."""
    env = base_env(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}",
        AUTH_REDIS__URL=redis_url,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        **otel,
    )
    migrate(tmp_path, env)
    return env


def _register(server: Server) -> str:
    email = f"tr-{uuid.uuid4().hex[:8]}@example.com"
    r = httpx.post(
        f"{server.url}/v1/auth/register", json={"email": email, "password": PASSWORD}, timeout=30
    )
    assert r.status_code == 202
    return email


def _login(server: Server, email: str, headers: dict[str, str] | None = None) -> httpx.Response:
    r = httpx.post(
        f"{server.url}/v1/auth/login",
        json={"email": email, "password": PASSWORD},
        headers=headers,
        timeout=30,
    )
    assert r.status_code == 200
    return r


def _me_from_the_cache(server: Server, bearer: dict[str, str]) -> httpx.Response:
    """``me`` twice: the first fills the identity cache, the second (returned) is answered
    in front of FastAPI."""
    for _ in range(2):
        me = httpx.get(f"{server.url}/v1/users/me", headers=bearer, timeout=30)
        assert me.status_code == 200
    return me


def test_login_trace_chain(tmp_path: Path, redis_url: str) -> None:
    trace_id = secrets.token_hex(16)
    caller_span = secrets.token_hex(8)
    with OtlpReceiver() as receiver:
        env = _env(
            tmp_path,
            redis_url,
            receiver,
            OTEL_SERVICE_NAME="auth-service-test",
            OTEL_TRACES_SAMPLER="parentbased_always_on",
        )
        with Server(tmp_path, env) as server:
            email = _register(server)
            # W3C trace context in: the server continues our trace under our span.
            _login(server, email, {"traceparent": f"00-{trace_id}-{caller_span}-01"})
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


def test_requests_answered_in_front_of_fastapi_continue_the_trace(
    tmp_path: Path, redis_url: str
) -> None:
    # The token endpoint (ADR 0760) and `me` (ADR 0432) are answered by layers in front of
    # the FastAPI stack; traced requests keep their server span there, with the route's name.
    trace_id = secrets.token_hex(16)
    caller_span = secrets.token_hex(8)
    parent = {"traceparent": f"00-{trace_id}-{caller_span}-01"}
    with OtlpReceiver() as receiver:
        env = _env(
            tmp_path,
            redis_url,
            receiver,
            OTEL_TRACES_SAMPLER="parentbased_traceidratio",
            OTEL_TRACES_SAMPLER_ARG="0",  # no root sampled: only the continued traces
        )
        created = subprocess.run(
            [CLI, "clients", "create", "--name", "Reports", "--type", "confidential",
             "--grant-type", "client_credentials", "--format", "json"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        client = json.loads(created.stdout)
        basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode())
        with Server(tmp_path, env) as server:
            form = {
                "Authorization": "Basic " + basic.decode(),
                "Content-Type": "application/x-www-form-urlencoded",
            }
            cc = "grant_type=client_credentials"
            r = httpx.post(f"{server.url}/oauth2/token", content=cc, headers=form, timeout=30)
            assert r.status_code == 200  # a root, not sampled
            r = httpx.post(
                f"{server.url}/oauth2/token", content=cc, headers={**form, **parent}, timeout=30
            )
            assert r.status_code == 200
            r = _login(server, _register(server))
            bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
            me = _me_from_the_cache(server, bearer)
            me = httpx.get(f"{server.url}/v1/users/me", headers={**bearer, **parent}, timeout=30)
            assert me.status_code == 200
            spans = receiver.wait_for(trace_id, {"POST /oauth2/token", "GET /v1/users/me"})
            logs = server.logs()

    servers = [s for s in spans if s.kind == SERVER_KIND]
    assert sorted(s.name for s in servers) == ["GET /v1/users/me", "POST /oauth2/token"]
    for span in servers:
        assert span.parent_span_id == caller_span
        assert span.attributes["http.response.status_code"] == 200
    [token] = [s for s in servers if s.name == "POST /oauth2/token"]
    assert token.attributes["http.route"] == "/oauth2/token"
    signing = [s for s in spans if s.name == "token.sign"]
    assert [s.parent_span_id for s in signing] == [token.span_id]
    # Only the continued traces were exported: the unsampled roots built no span.
    assert {s.trace_id for s in receiver.spans} == {trace_id}
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    access = [
        line
        for line in lines
        if line.get("log_type") == "access" and line.get("trace_id") == trace_id
    ]
    assert sorted(line["route"] for line in access) == ["/oauth2/token", "/v1/users/me"]


def test_a_sampled_me_answered_in_front_is_exported_with_its_ids_in_the_access_line(
    tmp_path: Path, redis_url: str
) -> None:
    # A root our head decision samples, answered by the `me` fast path from the identity
    # cache: its server span is a leaf handed to the batch processor when it ends
    # (tracing.LeafServerSpan), and must reach the collector like any other span, with the
    # service's resource, and with the ids its access line gave.
    with OtlpReceiver() as receiver:
        env = _env(tmp_path, redis_url, receiver)  # the default sampler: every root sampled
        with Server(tmp_path, env) as server:
            r = _login(server, _register(server))
            bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
            me = _me_from_the_cache(server, bearer)
            request_id = me.headers["x-request-id"]

            def access_line() -> list[dict[str, Any]]:  # access lines are written in batches
                lines = [json.loads(x) for x in server.logs().splitlines() if x.startswith("{")]
                return [x for x in lines if x.get("request_id") == request_id]

            [line] = wait_for(access_line, what="the access line of the answered me")
            spans = receiver.wait_for(line["trace_id"], {"GET /v1/users/me"})

    [span] = [s for s in spans if s.name == "GET /v1/users/me"]
    assert span.span_id == line["span_id"]
    assert span.parent_span_id == ""  # a root
    assert span.kind == SERVER_KIND
    assert span.service == "auth-service"
    assert span.attributes["http.route"] == "/v1/users/me"
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["http.response.status_code"] == 200
    # Nothing else in its trace: the answer came from the cache, no statement, no Redis.
    assert [s.name for s in spans] == ["GET /v1/users/me"]
