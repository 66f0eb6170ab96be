"""ServerSpanMiddleware's head decision (ADR 0420): an unsampled root request builds no span
and runs under one constant unsampled parent whose ids are never logged or propagated; a
sampled one gets its server span whatever the configured sampler says about the root."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

from auth_service.observability import tracing


@pytest.mark.parametrize(
    ("env", "rate"),
    [
        ({}, 1.0),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
            0.1,
        ),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "7"}, 1.0),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, 0.0),
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, None),
    ],
)
def test_root_sampling_rate(env: dict[str, str], rate: float | None) -> None:
    assert tracing.root_sampling_rate(env) == rate


def _scope() -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": "/v1/users/me", "headers": []}


async def _noop(message: Any) -> None:
    return None


async def test_unsampled_request_builds_no_span(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=tracing._head_decided(ParentBased(ALWAYS_OFF)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_server_tracer", provider.get_tracer("test"))
    monkeypatch.setattr(tracing, "_root_rate", 0.0)
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(trace.get_current_span())
        with provider.get_tracer("inner").start_as_current_span("child") as child:
            seen.append(child)
        seen.append(tracing.current_trace_ids())
        seen.append(tracing.current_traceparent())

    await tracing.ServerSpanMiddleware(app)(_scope(), _noop, _noop)
    current, child, ids, traceparent = seen
    assert not current.is_recording()
    assert current.get_span_context().trace_id == tracing._UNSAMPLED_TRACE_ID
    assert not child.is_recording()  # the parent-based sampler drops what runs inside
    assert ids is None
    assert traceparent is None
    assert exporter.get_finished_spans() == ()
    assert trace.get_current_span() is trace.INVALID_SPAN  # detached afterwards

    # Forced: the middleware's decision wins over a sampler that would drop every root.
    monkeypatch.setattr(tracing, "_root_rate", 1.0)
    seen.clear()
    await tracing.ServerSpanMiddleware(app)(_scope(), _noop, _noop)
    assert seen[0].get_span_context().trace_flags.sampled
    assert seen[1].get_span_context().trace_flags.sampled  # children follow the parent
    assert seen[2] is not None
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["GET", "child"]


class _Counting:
    """A sampler that counts how often the SDK asks it (every span the SDK starts)."""

    def __init__(self) -> None:
        self.asked = 0
        self._inner = ParentBased(ALWAYS_OFF)

    def should_sample(self, *args: Any, **kwargs: Any) -> Any:
        self.asked += 1
        return self._inner.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return "Counting"


async def test_an_unsampled_requests_own_spans_never_reach_the_sdk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Token signing, hashing, a statement, a log line's ids: inside the unsampled context
    each is one identity check, not a span the SDK samples, identifies and then drops
    (that cost a refresh ~4 % of its CPU with tracing configured and nothing sampled)."""
    counting = _Counting()
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=tracing._head_decided(counting))  # type: ignore[arg-type]
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_provider", provider)
    monkeypatch.setattr(tracing, "_server_tracer", provider.get_tracer("test"))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("auth_service"))
    monkeypatch.setattr(tracing, "_db_tracer", provider.get_tracer("auth_service.db"))

    class _Url:
        host, port, database = "db.internal", 5432, "auth"

    class _Engine:
        url = _Url()

        class dialect:
            name = "postgresql"

    statements = tracing.StatementSpans(_Engine())
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        with tracing.span("token.sign", {"jwt.alg": "ES256"}) as signing:
            seen.append(signing.is_recording())
            seen.append(statements.start("SELECT 1"))
        seen.append(tracing.log_correlation(None, "info", {}))

    monkeypatch.setattr(tracing, "_root_rate", 0.0)
    await tracing.ServerSpanMiddleware(app)(_scope(), _noop, _noop)
    signing, statement, event = seen
    assert counting.asked == 0
    assert signing is False
    assert statement is None
    assert event == {}
    assert exporter.get_finished_spans() == ()

    # Sampled: the same calls are spans the SDK records, children of the server span.
    monkeypatch.setattr(tracing, "_root_rate", 1.0)
    seen.clear()
    await tracing.ServerSpanMiddleware(app)(_scope(), _noop, _noop)
    signing, statement, event = seen
    assert counting.asked == 2  # token.sign, the statement (the server span was forced)
    assert signing is True
    assert statement is not None
    assert statement.is_recording()
    statement.end()
    assert set(event) == {"trace_id", "span_id"}
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["GET", "SELECT auth", "token.sign"]

    # Outside any request (a job's root span): the SDK decides, as before.
    with tracing.span("job send_mail"):
        pass
    assert counting.asked == 3
