"""What the export thread does per sampled span: the provider's resource is hashed once (the
OTLP encoder looks every span's resource up in a dict, and the SDK's ``Resource`` hashes by
serialising its attributes to JSON each time)."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk import resources
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from auth_service.observability import tracing


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
