"""What a sampled span costs, and that the cheaper ways export the same span: the provider's
resource is hashed once (the OTLP encoder looks every span's resource up in a dict, and the
SDK's ``Resource`` hashes by serialising its attributes to JSON each time); the ``me`` fast
path's sampled roots are leaf spans handed to the processor when they end."""

from __future__ import annotations

import time

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk import resources
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from auth_service.observability import tracing
from tests.support.spans import record_spans


def test_the_resource_is_hashed_once_and_encodes_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = Resource.create({"service.name": "auth-service", "service.version": "9.9"})
    once = tracing._hashed_once(plain)
    assert hash(once) == hash(plain)
    assert once == plain
    assert dict(once.attributes) == dict(plain.attributes)

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=once)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for name in ("a", "b", "c"):
        provider.get_tracer("t").start_span(name).end()
    spans = exporter.get_finished_spans()

    def serialised_again(*args: object, **kwargs: object) -> str:
        raise AssertionError("the resource was serialised to be hashed again")

    monkeypatch.setattr(resources, "dumps", serialised_again)
    request = encode_spans(spans)
    assert len(request.resource_spans) == 1  # the three spans grouped under one resource
    assert [s.name for s in request.resource_spans[0].scope_spans[0].spans] == ["a", "b", "c"]
    names = {kv.key: kv.value.string_value for kv in request.resource_spans[0].resource.attributes}
    assert names["service.name"] == "auth-service"
    assert names["service.version"] == "9.9"


def _me_scope() -> dict[str, object]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/v1/users/me",
        "scheme": "https",
        "http_version": "1.1",
        "headers": [(b"authorization", b"Bearer x")],
        tracing.HEAD_DECISION: True,  # a root our head decision sampled
    }


def _encoded(span: ReadableSpan) -> bytes:
    """The span's OTLP encoding with its ids and times blanked (they differ by design)."""
    request = encode_spans([span])
    [resource_spans] = request.resource_spans
    [scope_spans] = resource_spans.scope_spans
    [encoded] = scope_spans.spans
    encoded.trace_id = encoded.span_id = b""
    encoded.start_time_unix_nano = encoded.end_time_unix_nano = 0
    return resource_spans.SerializeToString()


def test_a_leaf_server_span_exports_what_a_live_one_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `me` fast path's sampled roots skip the live SDK span (~130 µs of the event loop
    in a serving worker): what reaches the exporter must be the same span."""
    recorded = record_spans(monkeypatch, 1.0)
    scope = _me_scope()
    assert tracing.leaf_applies(scope)
    start = time.time_ns()
    leaf = tracing.LeafServerSpan(scope, "GET", "/v1/users/me", start)
    ids_inside = tracing.current_trace_ids()  # the access line's, while it is open
    leaf.end(200)
    assert tracing.current_trace_ids() is None  # no longer current
    live = tracing.FrontSpan(scope, "GET", "/v1/users/me", start)
    live.end(200)
    leaf_span, live_span = recorded.spans()

    assert leaf_span.context is not None
    assert ids_inside == (
        format(leaf_span.context.trace_id, "032x"),
        format(leaf_span.context.span_id, "016x"),
    )
    assert leaf_span.context.trace_flags.sampled
    assert leaf_span.parent is None
    assert leaf_span.start_time == start
    assert leaf_span.end_time is not None
    assert leaf_span.end_time >= start

    def shape(span: ReadableSpan) -> tuple[object, ...]:
        return (
            span.name,
            span.kind,
            dict(span.attributes or {}),
            span.parent,
            span.status.status_code,
            span.instrumentation_scope,
            span.resource,
            tuple(span.events),
            tuple(span.links),
        )

    assert shape(leaf_span) == shape(live_span)
    assert leaf_span.attributes is not None
    assert leaf_span.attributes["http.response.status_code"] == 200
    assert _encoded(leaf_span) == _encoded(live_span)

    recorded.clear()
    tracing.LeafServerSpan(scope, "GET", "/v1/users/me", time.time_ns()).end(503)
    tracing.FrontSpan(scope, "GET", "/v1/users/me", time.time_ns()).end(503)
    failed_leaf, failed_live = recorded.spans()
    assert failed_leaf.status.status_code is StatusCode.ERROR
    assert shape(failed_leaf) == shape(failed_live)


def test_a_leaf_span_only_for_a_root_we_sampled(monkeypatch: pytest.MonkeyPatch) -> None:
    scope = _me_scope()
    assert not tracing.leaf_applies(scope)  # tracing off: no processor
    record_spans(monkeypatch, 1.0)
    assert tracing.leaf_applies(scope)
    scope[tracing.HEAD_DECISION] = False
    assert not tracing.leaf_applies(scope)
    # A traceparent to continue: no head decision of ours, the sampler decides (FrontSpan).
    del scope[tracing.HEAD_DECISION]
    assert not tracing.leaf_applies(scope)
