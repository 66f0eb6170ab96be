"""What ServerSpanMiddleware adds to a request that is not sampled (issue #19: ≤ 3 µs).

``.venv/bin/python -m bench.observability.unsampled [N]``: N calls of the middleware around an
app that does nothing, minus N calls of the app alone, best of 7 rounds (a shared machine only
adds time); the request carries no trace headers, as most do, and is not sampled (rate 0).
Also times the previous way (start_span with the SDK's sampler saying no, then attach) for
comparison.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind

from auth_service.observability import tracing


async def _noop(message: Any) -> None:
    return None


async def _app(scope: Any, receive: Any, send: Any) -> None:
    return None


async def _previous(scope: Any, receive: Any, send: Any) -> None:
    """The pre-ADR-0420 unsampled path: a NonRecordingSpan from the SDK, attached."""
    current = _tracer.start_span(scope["method"], kind=SpanKind.SERVER)
    token = otel_context.attach(trace.set_span_in_context(current))
    try:
        await _app(scope, receive, send)
    finally:
        current.end()
        otel_context.detach(token)


_tracer = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0))).get_tracer("bench")


async def _time(fn: Any, scope: dict[str, Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await fn(scope, _noop, _noop)
    return time.perf_counter() - start


async def main(n: int) -> dict[str, float]:
    tracing._root_rate = 0.0
    middleware = tracing.ServerSpanMiddleware(_app)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/users/me",
        "headers": [(b"host", b"x"), (b"user-agent", b"wrk"), (b"authorization", b"Bearer t")],
    }
    now = before = float("inf")
    for _ in range(7):
        bare = await _time(_app, scope, n)
        now = min(now, (await _time(middleware, scope, n) - bare) / n)
        before = min(before, (await _time(_previous, scope, n) - bare) / n)
    return {"unsampled_us": round(now * 1e6, 2), "previous_unsampled_us": round(before * 1e6, 2)}


if __name__ == "__main__":
    print(asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)))
