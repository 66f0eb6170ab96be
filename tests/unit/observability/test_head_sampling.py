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
