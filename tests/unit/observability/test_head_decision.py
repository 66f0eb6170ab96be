"""The head decision taken in front of the app (``tracing.untraced_head``): the layers in
front (``me``, the token endpoints) serve the requests head sampling does not sample in the
unsampled context and the traced ones under a ``FrontSpan``, and the full stack keeps the
decision of a request handed on (one roll per request)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import StatusCode

from auth_service.observability import tracing
from tests.support.spans import record_spans


@pytest.fixture
def tracing_on(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Tracing as configured (a provider installed), without installing one process-wide:
    the decisions read only whether there is one and the root rate."""

    def at(rate: float | None) -> None:
        monkeypatch.setattr(tracing, "_provider", object())
        monkeypatch.setattr(tracing, "_root_rate", rate)

    return at


def test_tracing_off_leaves_every_request_to_the_fast_path() -> None:
    scope: dict[str, Any] = {
        "headers": [(b"traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]
    }
    assert tracing.untraced_head(scope) is True
    assert tracing.HEAD_DECISION not in scope
    assert tracing.enter_unsampled() is None  # nothing attached while tracing is off


def test_an_unsampled_root_is_untraced_and_the_decision_is_kept(tracing_on: Any) -> None:
    tracing_on(0.0)
    scope: dict[str, Any] = {"headers": []}
    assert tracing.untraced_head(scope) is True
    assert scope[tracing.HEAD_DECISION] is False


def test_a_sampled_root_goes_on_with_its_decision(tracing_on: Any) -> None:
    tracing_on(1.0)
    scope: dict[str, Any] = {"headers": []}
    assert tracing.untraced_head(scope) is False
    assert scope[tracing.HEAD_DECISION] is True
    # Asked again (the full stack), the same answer: no second roll.
    tracing_on(0.0)
    assert tracing.untraced_head(scope) is False


def test_trace_headers_and_unknown_samplers_are_traced(tracing_on: Any) -> None:
    tracing_on(0.0)
    with_parent: dict[str, Any] = {"headers": [(b"traceparent", b"00-x-y-01")]}
    assert tracing.untraced_head(with_parent) is False
    assert tracing.HEAD_DECISION not in with_parent
    tracing_on(None)  # a sampler whose root decision is not a plain rate
    assert tracing.untraced_head({"headers": []}) is False


async def test_the_middleware_keeps_a_decision_taken_in_front(tracing_on: Any) -> None:
    tracing_on(1.0)  # it would sample every root it rolls for itself
    seen: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(trace.get_current_span().get_span_context().trace_id)

    middleware = tracing.ServerSpanMiddleware(app)
    scope = {"type": "http", "path": "/v1/users/me", "method": "GET", "headers": []}
    scope[tracing.HEAD_DECISION] = False
    await middleware(scope, None, None)
    assert seen == [tracing._UNSAMPLED_TRACE_ID]  # the unsampled parent, no span of its own


async def test_the_fast_path_serves_in_the_unsampled_context(tracing_on: Any) -> None:
    tracing_on(0.0)
    token = tracing.enter_unsampled()
    try:
        current = trace.get_current_span().get_span_context()
        assert current.trace_id == tracing._UNSAMPLED_TRACE_ID
        assert not current.trace_flags.sampled
        assert tracing.current_trace_ids() is None  # the access line names no trace
    finally:
        tracing.leave(token)
    assert trace.get_current_span().get_span_context().trace_id != tracing._UNSAMPLED_TRACE_ID


def test_a_front_span_is_current_until_it_ends_and_reports_the_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorded = record_spans(monkeypatch, 1.0)
    scope: dict[str, Any] = {"type": "http", "path": "/oauth2/token", "headers": []}
    assert tracing.untraced_head(scope) is False
    began = time.time_ns() - 5_000_000  # work done before the layer knew it answers
    front = tracing.FrontSpan(scope, "POST", "/oauth2/token", began)
    inside = trace.get_current_span()
    assert inside.is_recording()
    with tracing.span("child"):
        pass
    front.end(503)
    assert not trace.get_current_span().is_recording()  # detached
    [child] = recorded.named("child")
    [server] = recorded.named("POST /oauth2/token")
    assert server.start_time == began
    assert server.context is not None
    assert child.parent is not None
    assert child.parent.span_id == server.context.span_id
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 503
    assert server.attributes["url.path"] == "/oauth2/token"


async def test_unsampled_requests_switch_the_library_instrumentations_off(
    tracing_on: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # configure_tracing installs this context: under it an instrumented Redis command or httpx
    # request builds no span and injects no traceparent naming the constant unsampled trace.
    monkeypatch.setattr(tracing, "_UNSAMPLED_CONTEXT", tracing._suppressing())
    tracing_on(0.0)
    assert is_instrumentation_enabled()
    token = tracing.enter_unsampled()
    try:
        assert not is_instrumentation_enabled()
        assert trace.get_current_span().get_span_context().trace_id == tracing._UNSAMPLED_TRACE_ID
    finally:
        tracing.leave(token)
    assert is_instrumentation_enabled()

    seen: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(is_instrumentation_enabled())

    middleware = tracing.ServerSpanMiddleware(app)
    scope = {"type": "http", "path": "/v1/auth/refresh", "method": "POST", "headers": []}
    await middleware(scope, None, None)
    assert seen == [False]
    assert is_instrumentation_enabled()
