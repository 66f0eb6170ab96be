"""Migration 0002 folds stored emails, and stops, naming them, rather than merge two accounts.

On SQLite and PostgreSQL, from a database at revision 0001 with rows written in the old
normal form (NFC, lower case).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.accounts.models import User
from auth_service.config.settings import Settings
from auth_service.db.base import DEFAULT_TENANT_ID
from auth_service.db.engine import create_engine
from auth_service.db.migrate import MigrationRefused, alembic_config, upgrade_to_head
from auth_service.db.revision import current_revision, head_revision
from tests.support.cli import cli_environment, run_cli
from tests.support.services import POSTGRES_URL, pg_admin, service_missing


def _upgrade_to(revision: str) -> object:
    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    return run


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A fresh database at revision 0001, before emails were folded."""
    name = f"auth_fold_{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    else:
        try:
            await pg_admin(f'CREATE DATABASE "{name}"')
        except Exception as exc:
            service_missing("PostgreSQL", f"{POSTGRES_URL}: {exc}")
        base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        url = f"{base}/{name}"
    made = create_engine(Settings(database={"url": url}))  # type: ignore[arg-type]
    async with made.begin() as conn:
        await conn.run_sync(_upgrade_to("0001"))  # type: ignore[arg-type]
    try:
        yield made
    finally:
        await made.dispose()
        if request.param == "postgresql":
            await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _add(engine: AsyncEngine, email: str) -> uuid.UUID:
    now = datetime.now(UTC)
    user_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            insert(User).values(
                id=user_id,
                tenant_id=DEFAULT_TENANT_ID,
                email=email,
                status="active",
                created_at=now,
                updated_at=now,
            )
        )
    return user_id


async def _emails(engine: AsyncEngine) -> dict[uuid.UUID, str]:
    async with engine.connect() as conn:
        return {row.id: row.email for row in await conn.execute(select(User.id, User.email))}


async def test_lookalikes_are_folded_and_others_left_alone(engine: AsyncEngine) -> None:
    wide = await _add(engine, "\uff42ob@example.com")  # full-width b
    sharp = await _add(engine, "straße@bücher.example")
    plain = await _add(engine, "carol@example.com")
    before, after = await upgrade_to_head(engine)
    assert (before, after) == ("0001", head_revision())
    assert await _emails(engine) == {
        wide: "bob@example.com",
        sharp: "strasse@bücher.example",  # the domain keeps its IDNA form
        plain: "carol@example.com",
    }


async def test_two_accounts_that_fold_together_stop_the_upgrade(engine: AsyncEngine) -> None:
    ada = await _add(engine, "ada@example.com")
    wide = await _add(engine, "\uff41da@example.com")  # full-width a
    ligature = await _add(engine, "\ufb01nn@example.com")  # the "fi" ligature
    other = await _add(engine, "finn@example.com")
    untouched = await _emails(engine)
    with pytest.raises(MigrationRefused) as refused:
        await upgrade_to_head(engine)
    message = str(refused.value)
    for user_id in (ada, wide, ligature, other):
        assert str(user_id) in message
    for email in ("'ada@example.com'", "'\uff41da@example.com'", "'\ufb01nn@example.com'"):
        assert email in message
    assert "Nothing was changed" in message
    assert await current_revision(engine) == "0001"
    assert await _emails(engine) == untouched

    # The operator keeps one account of each group; the upgrade then goes through.
    async with engine.begin() as conn:
        await conn.execute(User.__table__.delete().where(User.id.in_([wide, ligature])))
    await upgrade_to_head(engine)
    assert await _emails(engine) == {ada: "ada@example.com", other: "finn@example.com"}


async def test_auth_service_migrate_reports_the_refusal_in_one_line(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """The operator's path: `auth-service migrate` exits 1 with the message, no traceback."""
    await _add(engine, "ada@example.com")
    await _add(engine, "\uff41da@example.com")
    env = cli_environment(tmp_path / "data")
    env["AUTH_DATABASE__URL"] = engine.url.render_as_string(hide_password=False)
    done = run_cli(["migrate"], env, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "'ada@example.com'" in errors[0]
    assert "run `auth-service migrate` again" in errors[0]
    assert await current_revision(engine) == "0001"
