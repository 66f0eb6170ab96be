"""The migrations go both ways on both databases: upgrade, downgrade to nothing, upgrade
again, and the schema and seed rows are what they were."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.config.settings import Settings
from auth_service.db.engine import create_engine
from auth_service.db.migrate import (
    alembic_config,
    alembic_current,
    alembic_head,
    upgrade_to_head,
)
from auth_service.db.revision import current_revision, head_revision
from tests.support.services import BOTH_DATABASES, fresh_postgres_database


@pytest.fixture(params=BOTH_DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it: the migrations are what is under test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    with fresh_postgres_database("auth_migrations_") as url:
        yield url


def _downgrade_to_base(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "base")


def _schema(connection: Connection) -> dict[str, Any]:
    """Tables with their columns, indexes, keys and constraints, as the database reports."""
    found = inspect(connection)
    schema: dict[str, Any] = {}
    for table in sorted(found.get_table_names()):
        schema[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)
            ],
            "primary key": found.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in found.get_indexes(table)
            ),
            "foreign keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"])
                for f in found.get_foreign_keys(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
        }
    if connection.dialect.name == "postgresql":
        # Types a migration creates outside its tables (enums) must go with them.
        schema["types"] = sorted(
            connection.execute(
                text(
                    "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                    " WHERE n.nspname = 'public' AND t.typtype = 'e'"
                )
            ).scalars()
        )
    return schema


async def _seed_rows(engine: AsyncEngine) -> list[tuple[str, ...]]:
    async with engine.connect() as conn:
        tenants = (await conn.execute(text("SELECT id, name FROM tenants"))).all()
        roles = (await conn.execute(text("SELECT name FROM roles ORDER BY name"))).all()
    return sorted(tuple(str(v) for v in r) for r in [*tenants, *roles])


async def test_upgrade_downgrade_upgrade_gives_the_same_schema(empty_database_url: str) -> None:
    engine = create_engine(Settings(database={"url": empty_database_url}))  # type: ignore[arg-type]
    try:
        assert await upgrade_to_head(engine) == (None, head_revision())
        # What the serving processes read without Alembic is what Alembic reads.
        assert head_revision() == alembic_head()
        assert await current_revision(engine) == await alembic_current(engine) == alembic_head()
        async with engine.connect() as conn:
            migrated = await conn.run_sync(_schema)
        seeded = await _seed_rows(engine)
        assert "users" in migrated
        assert seeded

        async with engine.begin() as conn:
            await conn.run_sync(_downgrade_to_base)
        assert await current_revision(engine) is None  # the table is there, and empty
        assert await alembic_current(engine) is None
        async with engine.connect() as conn:
            emptied = await conn.run_sync(_schema)
        # Only Alembic's own bookkeeping table stays, and on PostgreSQL no type either.
        assert set(emptied) - {"types"} <= {"alembic_version"}
        assert emptied.get("types", []) == []

        assert await upgrade_to_head(engine) == (None, head_revision())
        async with engine.connect() as conn:
            assert await conn.run_sync(_schema) == migrated
        assert await _seed_rows(engine) == seeded
    finally:
        await engine.dispose()
