"""Database metrics (pool occupancy, statement duration) and tracing for one engine."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.observability import metrics, tracing

_START = "_auth_statement_start"
_SPAN = "_auth_statement_span"


def _sample_pool(pool: Any, returning: int = 0) -> None:
    # Only queue pools have a size; SQLite in memory uses a static pool with nothing to report.
    size = getattr(pool, "size", None)
    if size is None:
        return
    metrics.DB_POOL_SIZE.set(size())
    # The checkin event fires before the pool takes the connection back: it is still counted
    # as checked out, and an idle pool would show one connection in use.
    metrics.DB_POOL_CHECKED_OUT.set(pool.checkedout() - returning)
    overflow = pool.overflow()
    if returning and pool.checkedin() >= size():
        overflow -= 1  # a full pool closes the returned connection instead of keeping it
    # QueuePool.overflow() counts from -pool_size; only connections beyond the pool matter.
    metrics.DB_POOL_OVERFLOW.set(max(0, overflow))


def instrument_engine(engine: AsyncEngine) -> None:
    """Record pool gauges on every checkout/checkin, the duration of every statement and,
    when tracing is on, a span per statement of a sampled request.

    The pool is sampled on its own events rather than on a timer: the numbers are exact at
    any scrape and cost a few attribute reads per checkout.
    """
    sync = engine.sync_engine
    pool = sync.pool
    spans = tracing.statement_spans(sync)

    @event.listens_for(pool, "checkout")
    def _on_checkout(*_args: Any) -> None:
        _sample_pool(pool)

    @event.listens_for(pool, "checkin")
    def _on_checkin(*_args: Any) -> None:
        _sample_pool(pool, returning=1)

    @event.listens_for(sync, "before_cursor_execute")
    def _before(
        _conn: Any, _cursor: Any, statement: Any, _params: Any, context: Any, _many: bool
    ) -> None:
        if context is not None:
            setattr(context, _START, time.perf_counter())
            if spans is not None:
                setattr(context, _SPAN, spans.start(str(statement)))

    @event.listens_for(sync, "after_cursor_execute")
    def _after(
        _conn: Any, _cursor: Any, _stmt: Any, _params: Any, context: Any, _many: bool
    ) -> None:
        start = getattr(context, _START, None)
        if start is not None:
            metrics.DB_QUERY_DURATION.observe(time.perf_counter() - start)
        span = getattr(context, _SPAN, None)
        if span is not None:
            span.end()

    @event.listens_for(sync, "handle_error")
    def _on_error(exc_context: Any) -> None:
        context = exc_context.execution_context
        start = getattr(context, _START, None)
        if start is not None:
            metrics.DB_QUERY_DURATION.observe(time.perf_counter() - start)
        span = getattr(context, _SPAN, None)
        if span is not None:
            tracing.StatementSpans.fail(span, exc_context.original_exception)

    _sample_pool(pool)
