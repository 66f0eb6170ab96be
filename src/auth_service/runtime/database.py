"""The drained database swap: a reloaded ``database`` section takes effect without a restart."""

from __future__ import annotations

import asyncio

import structlog

from auth_service.config.reload import ReloadRejected
from auth_service.config.settings import Settings
from auth_service.db.engine import Database, create_engine
from auth_service.db.revision import current_revision, head_revision

log = structlog.get_logger(__name__)


async def swap_database(db: Database, new: Settings) -> None:
    """Point ``db`` at the database of ``new`` once it has proven it can serve.

    The new engine must reach its server and find the schema at head within the pool
    timeout, else ReloadRejected and ``db`` is untouched. Then it takes every new request;
    requests holding a connection of the old pool finish on it, and the old pool closes each
    connection as it is returned.
    """
    engine = create_engine(new)
    try:
        async with asyncio.timeout(new.database.pool_timeout_seconds):
            revision = await current_revision(engine)
    except Exception as exc:
        await engine.dispose()
        raise ReloadRejected(
            f"database: cannot use the new database ({type(exc).__name__}); "
            "kept the current one - check database.url and that the server is reachable"
        ) from None
    if revision != head_revision():
        await engine.dispose()
        raise ReloadRejected(
            f"database: the new database is at schema {revision or 'nothing'}, expected "
            f"{head_revision()}; run `auth-service migrate` against it first"
        )
    old = db.replace_engine(engine)
    await old.dispose()
    log.info("database_swapped", dialect=db.backend.value)
