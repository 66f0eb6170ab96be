"""Housekeeping on SQLite and PostgreSQL with tens of thousands of rows (bulk inserted): a dry
run counts exactly what a run deletes, a run deletes exactly the rows past their retention in
bounded batches and keeps the rest (a live session keeps its whole refresh-token chain), and
the metrics count what went."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from auth_service.config.settings import Settings
from auth_service.db.engine import Database, create_engine
from auth_service.housekeeping.purge import Housekeeping
from auth_service.sessions.models import RefreshToken
from tests.support.housekeeping import TOKENS_PER_SESSION, counts, seed

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
BATCH = 1000


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(create_engine(Settings(database={"url": database_url})))  # type: ignore[arg-type]
    try:
        yield database
    finally:
        await database.dispose()


def _housekeeping(db: Database, database_url: str) -> Housekeeping:
    settings = Settings(
        database={"url": database_url},  # type: ignore[arg-type]
        housekeeping={"batch_size": BATCH, "batch_pause_seconds": 0},  # type: ignore[arg-type]
    )
    return Housekeeping(db, settings, clock=lambda: NOW)


def _purged_metric(table: str) -> float:
    value = REGISTRY.get_sample_value("auth_housekeeping_rows_purged_total", {"table": table})
    return value or 0.0


async def test_a_run_purges_what_is_past_retention_and_keeps_the_rest(
    db: Database, database_url: str
) -> None:
    seeded = await seed(db, NOW)
    assert seeded.total_purged > 70_000
    before = await counts(db)
    assert before == {t: seeded.purged[t] + seeded.kept[t] for t in before}
    housekeeping = _housekeeping(db, database_url)

    dry = await housekeeping.run(dry_run=True)
    assert {t.table: t.rows for t in dry.tables} == seeded.purged
    assert await counts(db) == before  # a dry run deletes nothing

    metric_before = {t: _purged_metric(t) for t in seeded.purged}
    seen: dict[str, list[int]] = defaultdict(list)
    report = await housekeeping.run(progress=lambda table, rows: seen[table].append(rows))
    assert {t.table: t.rows for t in report.tables} == seeded.purged
    assert report.total == seeded.total_purged
    assert await counts(db) == seeded.kept
    for table, rows in seeded.purged.items():
        # One progress report per batch of at most BATCH rows, the running total rising.
        assert seen[table] == sorted(seen[table])
        assert seen[table][-1] == rows
        assert len(seen[table]) == rows // BATCH + 1
        assert _purged_metric(table) - metric_before[table] == rows
    gauge = REGISTRY.get_sample_value("auth_housekeeping_table_rows", {"table": "sessions"})
    assert gauge == seeded.kept["sessions"]

    # Every live session keeps its whole chain, spent links included: presenting a spent
    # token is still recognised as reuse.
    async with db.single() as conn:
        spent = await conn.execute(
            select(func.count()).where(
                RefreshToken.session_id.in_(seeded.live_session_ids),
                RefreshToken.used_at.is_not(None),
            )
        )
        assert spent.scalar_one() == len(seeded.live_session_ids) * (TOKENS_PER_SESSION - 1)

    again = await housekeeping.run()
    assert again.total == 0  # nothing left past retention


async def test_retention_settings_move_the_cut(db: Database, database_url: str) -> None:
    seeded = await seed(db, NOW, scale=0.1)
    settings = Settings(
        database={"url": database_url},  # type: ignore[arg-type]
        audit={"retention_days": 500},  # type: ignore[arg-type]
        housekeeping={  # type: ignore[arg-type]
            "session_retention_days": 0,
            "token_retention_hours": 0,
            "batch_pause_seconds": 0,
        },
    )
    dry = await Housekeeping(db, settings, clock=lambda: NOW).run(dry_run=True)
    rows = {t.table: t.rows for t in dry.tables}
    assert rows["audit_events"] == 0  # 400 days old, kept 500
    # Without a retention, the sessions revoked a day ago go too (with their chains), and
    # the codes that expired an hour ago; live sessions never do.
    assert rows["sessions"] == seeded.purged["sessions"] + 50
    assert rows["refresh_tokens"] == (seeded.purged["sessions"] + 50) * TOKENS_PER_SESSION
    assert rows["oauth_authorization_codes"] == seeded.purged["oauth_authorization_codes"] + 10
