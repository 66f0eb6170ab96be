"""CPU per execution of the refresh exchange statement: SQLAlchemy's ``execute`` against
``Database.fetch_driver`` (asyncpg's connection directly, ADR 0445), alternating, in process.

The statement presents a digest no token has (the exchange finds nothing and writes nothing),
so runs repeat without state. Needs a migrated PostgreSQL database::

    AUTH_DATABASE__URL=postgresql+asyncpg://postgres@127.0.0.1:5432/<db> \\
        .venv/bin/python bench/refresh_driver.py [executions per round, 3000]

Prints the CPU milliseconds per execution of each path, two rounds each. CPU time, not wall
time: on a shared machine the wall clock measures the neighbours.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
import uuid

from auth_service.config.loader import load_settings
from auth_service.db.engine import Database, create_engine
from auth_service.sessions.refresh import _EXCHANGE_DRIVER, _EXCHANGE_POSTGRESQL


async def main(n: int) -> None:
    db = Database(create_engine(load_settings().settings))
    now = dt.datetime.now(dt.UTC)
    params = {
        "digest": b"\x00" * 32,
        "owner_client_id": None,
        "now": now,
        "grace": False,
        "grace_cutoff": now,
        "idle_cutoff": now,
        "successor_id": uuid.uuid4(),
        "successor_digest": b"\x01" * 32,
    }
    try:
        for label in ("sqlalchemy", "driver", "sqlalchemy", "driver"):
            start = time.process_time()
            for _ in range(n):
                if label == "sqlalchemy":
                    async with db.single() as conn:
                        (await conn.execute(_EXCHANGE_POSTGRESQL, params)).all()
                else:
                    await db.fetch_driver(_EXCHANGE_DRIVER, params)
            cpu_ms = 1000 * (time.process_time() - start) / n
            print(f"{label:10s} {cpu_ms:.3f} ms CPU per execution ({n} executions)")
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
