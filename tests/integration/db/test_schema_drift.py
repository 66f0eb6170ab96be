"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL.

A model changed without a migration (or a migration that disagrees with its model) fails
here instead of at the first query that touches the column in production.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from auth_service import schema
from auth_service.config.settings import Settings
from auth_service.db.engine import create_engine


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, schema.metadata))


async def test_migrated_database_matches_the_models(database_url: str) -> None:
    engine = create_engine(Settings(database={"url": database_url}))  # type: ignore[arg-type]
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []
