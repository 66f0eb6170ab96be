"""What one sampled server span costs the process, from its start to its OTLP export
(issue #19: tracing at 10 % on `me` and refresh within 10 %).

``.venv/bin/python -m bench.observability.sampled [N]``: N ``tracing.FrontSpan`` (the span the
``me`` fast path and the token endpoints' front give a traced request), each started, given
its attributes and status, and ended, with the service's provider setup — the SDK's
``BatchSpanProcessor`` and the OTLP/HTTP protobuf exporter posting to a local sink that drops
what it gets (``bench.observability.sink``'s handler, in a thread of this process) — then
flushed (a queue large enough that no span is dropped). Process CPU time (every thread: the
export thread encodes and posts) per span, best of 5 rounds; beside it, the same N with the
head decision unsampled (``untraced_head``, ``enter_unsampled``/``leave``), the cost 90 % of
requests pay at 10 % sampling. The loop's own work (building a scope) is measured alone and
taken off both.

The expected tracing cost per request at rate r is ``r * sampled + (1 - r) * unsampled``;
divided by a request's CPU (``make bench``'s per-service-CPU-second figure of `me`), that is
the share tracing adds to it with nothing else changed.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from auth_service.observability import tracing
from bench.observability.run import Sink


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/v1/users/me",
        "scheme": "http",
        "http_version": "1.1",
        "headers": [(b"host", b"localhost"), (b"authorization", b"Bearer x")],
    }


def _sampled(n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        scope = _scope()
        tracing.untraced_head(scope)
        tracing.FrontSpan(scope, "GET", "/v1/users/me", time.time_ns()).end(200)
    assert tracing._provider is not None
    tracing._provider.force_flush(timeout_millis=60_000)
    return (time.process_time() - start) / n


def _baseline(n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        _scope()
    return (time.process_time() - start) / n


def _unsampled(n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        scope = _scope()
        if tracing.untraced_head(scope):
            tracing.leave(tracing.enter_unsampled())
    return (time.process_time() - start) / n


def main(n: int) -> None:
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink.server_address[1]}"
    provider = TracerProvider(sampler=tracing._head_decided(ParentBased(TraceIdRatioBased(0.1))))
    # A queue that holds a whole round: none dropped, every span exported (and paid for).
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), max_queue_size=n + 1))
    tracing._provider = provider
    tracing._server_tracer = provider.get_tracer("auth_service.http")
    sampled, unsampled, baseline = [], [], []
    for _ in range(5):
        baseline.append(_baseline(n))
        tracing._root_rate = 1.0
        sampled.append(_sampled(n))
        tracing._root_rate = 0.0
        unsampled.append(_unsampled(n))
    b = min(baseline) * 1e6  # building the scope, in both loops
    s, u = min(sampled) * 1e6 - b, min(unsampled) * 1e6 - b
    print(f"spans per round: {n}; OTLP bytes received: {Sink.spans_bytes:,}")
    print(f"sampled span, start to export, process CPU: {s:.1f} µs (best of 5)")
    print(f"unsampled head decision and context: {u:.2f} µs (best of 5)")
    print(f"expected at 10 % sampling: {0.1 * s + 0.9 * u:.1f} µs per request")
    sink.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
