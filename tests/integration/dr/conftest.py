from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from auth_service.backup import pgtools
from auth_service.dr.service import create_standby
from tests.support.pg_cluster import cluster, create_database, require_postgres_binaries


@pytest.fixture
async def pair() -> AsyncIterator[tuple[pgtools.Cluster, pgtools.Cluster]]:
    """Primary A with the service's database, and B streaming from it through a slot."""
    require_postgres_binaries()
    async with cluster("auth-dr-a-") as a:
        await create_database(a)
        b = pgtools.Cluster(pgtools.Cluster.new_root("auth-dr-b-"), pgtools.free_port())
        try:
            await create_standby(b, a.conninfo, "auth_dr_standby")
            yield a, b
        finally:
            await b.destroy()


@pytest.fixture
def backup_key() -> str:
    import secrets

    return secrets.token_urlsafe(32)
