"""Schema migrations (Alembic) run in-process on SQLite and PostgreSQL.

Only the commands that change or inspect the schema import this module (and so Alembic); what
the serving processes need to check the schema is in ``db.revision``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class MigrationRefused(Exception):
    """A migration found data it must not change on its own; the message says what to do.

    Raised inside the migration's transaction, so nothing of the upgrade is applied.
    """


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def alembic_head() -> str:
    """The head as Alembic's script directory sees it (``db.revision.head_revision`` must
    agree: tests/unit/db/test_revision.py)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _upgrade(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade_to_head(engine: AsyncEngine) -> tuple[str | None, str]:
    """Apply pending migrations; idempotent. Returns (revision before, revision after)."""
    async with engine.begin() as conn:
        before = await conn.run_sync(_current)
        await conn.run_sync(_upgrade)
        after = await conn.run_sync(_current)
    assert after is not None
    return before, after


async def alembic_current(engine: AsyncEngine) -> str | None:
    """The database's revision as Alembic reads it (``db.revision.current_revision`` must agree)."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)
