"""Pool gauges follow the pool exactly, on both databases: checkouts, overflow, and back to
idle (the checkin event fires before the pool has taken the connection back)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import create_async_engine

from auth_service.observability.db import instrument_engine
from auth_service.observability.metrics import (
    DB_POOL_CHECKED_OUT,
    DB_POOL_OVERFLOW,
    DB_POOL_SIZE,
)


def _gauges() -> tuple[float, float, float]:
    return (
        DB_POOL_SIZE._value.get(),
        DB_POOL_CHECKED_OUT._value.get(),
        DB_POOL_OVERFLOW._value.get(),
    )


async def test_pool_gauges_count_checkouts_and_overflow_back_to_idle(database_url: str) -> None:
    engine = create_async_engine(database_url, pool_size=1, max_overflow=1)
    instrument_engine(engine)
    try:
        first = await engine.connect()
        await first.exec_driver_sql("SELECT 1")
        assert _gauges() == (1, 1, 0)
        second = await engine.connect()
        await second.exec_driver_sql("SELECT 1")
        assert _gauges() == (1, 2, 1)
        await first.close()
        # Two connections exist, one of them beyond the pool's size; one is in use.
        assert _gauges() == (1, 1, 1)
        await second.close()
        # The pool was full: the overflow connection was closed, not kept.
        assert _gauges() == (1, 0, 0)
    finally:
        await engine.dispose()
