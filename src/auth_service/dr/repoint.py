"""Repointing a running service at a new primary without a restart."""

from __future__ import annotations

from auth_service.backup.verify import with_database_url
from auth_service.db.engine import create_engine
from auth_service.services import Services


async def repoint_database(services: Services, url: str) -> None:
    """Swap the engine under every service (they share one Database). New requests use the
    new primary at once; the old pool is closed, failing its in-flight requests fast."""
    settings = with_database_url(services.settings, url)
    engine = create_engine(settings)
    # Every service holds the shared Database, which follows its new engine.
    old = services.db.replace_engine(engine)
    services.settings = settings
    await old.dispose()
