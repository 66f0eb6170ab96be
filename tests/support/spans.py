"""Spans recorded in memory by an SDK tracer provider that only this test uses.

``trace.set_tracer_provider`` works once per process, so the provider is not installed
globally: the tracers of ``observability.tracing`` (server spans and manual spans) and the
switches it reads (``_provider``, ``_processor``, ``_root_rate``) are swapped for the test,
with the sampler the service builds (its configured sampler behind ``HeadDecided``). Library
instrumentations (SQLAlchemy, Redis) keep the process's tracer and are not recorded here.
"""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from auth_service import __version__
from auth_service.observability import tracing


class Recorded:
    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter

    def spans(self) -> list[ReadableSpan]:
        return list(self._exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.name == name]

    def clear(self) -> None:
        self._exporter.clear()


def record_spans(monkeypatch: pytest.MonkeyPatch, root_rate: float) -> Recorded:
    """Tracing on as ``parentbased_traceidratio`` at ``root_rate``, spans kept in memory."""
    exporter = InMemorySpanExporter()
    sampler = ParentBased(root=TraceIdRatioBased(root_rate))
    provider = TracerProvider(sampler=tracing._head_decided(sampler))
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    monkeypatch.setattr(tracing, "_provider", provider)
    monkeypatch.setattr(tracing, "_processor", processor)
    monkeypatch.setattr(tracing, "_root_rate", root_rate)
    # The service's tracers' names and version (the scope of what they export).
    monkeypatch.setattr(
        tracing, "_server_tracer", provider.get_tracer("auth_service.http", __version__)
    )
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("auth_service", __version__))
    return Recorded(exporter)
