"""Database.warm: a served worker opens its kept PostgreSQL connections before its first
request (bench/README.md, "the tail of me": the first burst after a start queued behind
connections opened one checkout at a time)."""

from __future__ import annotations

import socket
import time

from auth_service.config.settings import Settings
from auth_service.db.engine import Database, create_engine


def _database(url: str, pool_size: int = 4) -> Database:
    settings = Settings(database={"url": url, "pool_size": pool_size})  # type: ignore[arg-type]
    return Database(create_engine(settings))


async def test_warm_opens_the_kept_connections_and_leaves_them_in_the_pool(
    database_url: str,
) -> None:
    db = _database(database_url)
    try:
        opened = await db.warm()
        pool = db.engine.pool
        if database_url.startswith("sqlite"):
            assert opened == 0  # no pool to fill: one file, connections are cheap
            return
        assert opened == 4
        assert pool.checkedin() == 4  # type: ignore[attr-defined]
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        async with db.single() as conn:  # served from what warm opened
            assert (await conn.exec_driver_sql("SELECT 1")).scalar() == 1
        assert pool.checkedin() == 4  # type: ignore[attr-defined]
    finally:
        await db.dispose()


async def test_warm_without_a_database_opens_nothing_and_does_not_wait() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = _database(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/none")
    try:
        started = time.monotonic()
        assert await db.warm(seconds_each=60) == 0
        # A refused connection ends the attempt at once: no attempt waited for its timeout.
        assert time.monotonic() - started < 30
    finally:
        await db.dispose()
