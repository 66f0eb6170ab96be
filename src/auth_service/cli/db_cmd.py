"""`auth-service migrate`."""

from __future__ import annotations

import typer

from auth_service.cli.common import fail, loaded_settings, out, run_async
from auth_service.db.engine import create_engine
from auth_service.db.migrate import MigrationRefused, upgrade_to_head


def migrate(ctx: typer.Context) -> None:
    """Bring the database schema to the newest revision (safe to run again)."""
    settings = loaded_settings(ctx).settings

    @run_async
    async def _run() -> None:
        engine = create_engine(settings)
        try:
            before, after = await upgrade_to_head(engine)
        except MigrationRefused as exc:
            raise fail(str(exc)) from None
        finally:
            await engine.dispose()
        if before == after:
            out.print(f"database already at {after}")
        else:
            out.print(f"database migrated {before or 'empty'} -> {after}")

    _run()
