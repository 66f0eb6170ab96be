"""The region-loss drill (issue #20): the primary region's cluster and backup destination are
gone; a new cluster is restored from the DR-region copy to the last archived WAL and the real
service serves from it. tests/support/region_drill.py says what it proves; the 1M-user run is
`bench/backup/bench_backup.py region-loss` (bench/backup/README.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.pg_cluster import require_postgres_binaries
from tests.support.region_drill import run_drill

# Throwaway PostgreSQL clusters: the server binaries, not the shared test server.
pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _ports() -> tuple[int, int] | None:
    """AUTH_TEST_DRILL_PORT=N: the clusters on N and N+1 (default: free ports)."""
    base = os.environ.get("AUTH_TEST_DRILL_PORT")
    return (int(base), int(base) + 1) if base else None


async def test_region_loss_restores_from_the_dr_copy_to_the_last_archived_wal(
    tmp_path: Path,
) -> None:
    require_postgres_binaries()
    figures = await run_drill(
        tmp_path,
        10_000,
        prefix=os.environ.get("AUTH_TEST_DRILL_PREFIX", "auth-drill-"),
        ports=_ports(),
    )
    assert figures.restored_users == 10_000
    assert figures.acked > figures.lost
