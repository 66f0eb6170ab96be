"""`auth-service housekeeping ...` as an operator runs it (docs/operations/housekeeping.md), on
SQLite and PostgreSQL: a dry run by default, counts per table, --confirm deletes and is
audited, table sizes, and the scheduled runs seen through `jobs list`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select

from auth_service.accounts.models import User
from auth_service.audit import events
from auth_service.audit.models import AuditEvent
from auth_service.backup.scheduled import register_prune
from auth_service.config.settings import Settings
from auth_service.db.base import utcnow
from auth_service.db.engine import Database, create_engine
from auth_service.services import build_services
from tests.support.cli import cli_environment, one_line_error, run_cli
from tests.support.housekeeping import Seeded, counts, seed
from tests.support.settings import TEST_MASTER_KEY, make_settings


def _cli(tmp_path: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_environment(tmp_path / "data")
    env.update(AUTH_DATABASE__URL=database_url, AUTH_MASTER_KEY=TEST_MASTER_KEY)
    return run_cli(list(args), env, tmp_path)


def _database(database_url: str) -> Database:
    return Database(create_engine(Settings(database={"url": database_url})))  # type: ignore[arg-type]


async def _seeded(database_url: str, *, due_deletion: bool = False) -> Seeded:
    db = _database(database_url)
    try:
        seeded = await seed(db, utcnow(), scale=0.1)
        if due_deletion:
            # An account whose self-service deletion is due: erased first (docs/privacy.md).
            async with db.transaction() as s:
                await s.execute(
                    insert(User).values(
                        email=f"leaving-{uuid.uuid4().hex[:8]}@example.com",
                        deletion_due_at=utcnow() - timedelta(days=1),
                    )
                )
        return seeded
    finally:
        await db.dispose()


async def _state(database_url: str) -> tuple[dict[str, int], list[AuditEvent]]:
    db = _database(database_url)
    try:
        async with db.sessionmaker() as s:
            stmt = select(AuditEvent).where(AuditEvent.type == events.HOUSEKEEPING_RUN)
            runs = list((await s.execute(stmt)).scalars())
        return await counts(db), runs
    finally:
        await db.dispose()


def test_dry_run_then_confirm_purges_and_reports_per_table(
    tmp_path: Path, database_url: str
) -> None:
    seeded = asyncio.run(_seeded(database_url, due_deletion=True))
    expected = {"users": 1, **seeded.purged}
    before, _ = asyncio.run(_state(database_url))

    dry = _cli(tmp_path, database_url, "housekeeping", "run", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True
    assert {t["table"]: t["rows"] for t in report["tables"]} == expected
    assert "dry run: add --confirm to delete" in dry.stderr
    assert asyncio.run(_state(database_url)) == (before, [])  # nothing deleted, nothing audited

    # The explicit spelling of the default, and the table output for a pipe.
    plain = _cli(tmp_path, database_url, "housekeeping", "run", "--dry-run")
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines[0] == "table\trows\tseconds"
    assert f"audit_events\t{seeded.purged['audit_events']}\t" in plain.stdout
    assert f"audit_events: {seeded.purged['audit_events']} would go" in plain.stderr

    done = _cli(tmp_path, database_url, "housekeeping", "run", "--confirm", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] is False
    assert report["total"] == seeded.total_purged + 1
    assert f"sessions: {seeded.purged['sessions']} purged" in done.stderr
    after, runs = asyncio.run(_state(database_url))
    # Added: the audit events of the erasure and of the run.
    assert after == {**seeded.kept, "audit_events": seeded.kept["audit_events"] + 2}
    (run,) = runs
    assert run.request_id == "cli"
    assert run.details["total"] == seeded.total_purged + 1
    assert run.details["rows"]["users"] == 1

    sizes = _cli(tmp_path, database_url, "housekeeping", "sizes", "--format", "json")
    assert sizes.returncode == 0, sizes.stderr
    assert {r["table"]: r["rows"] for r in json.loads(sizes.stdout)} == after


def test_contradictions_and_bad_formats_are_one_line_errors(
    tmp_path: Path, database_url: str
) -> None:
    both = _cli(tmp_path, database_url, "housekeeping", "run", "--dry-run", "--confirm")
    one_line_error(both, "--dry-run and --confirm")
    assert both.returncode == 2
    fmt = _cli(tmp_path, database_url, "housekeeping", "run", "--format", "yaml")
    one_line_error(fmt, "--format must be table or json")


async def _enqueue_slots(settings: Settings) -> None:
    """What every long-running worker's upkeep does each round: the current slots' jobs."""
    services = build_services(settings)
    try:
        register_prune(services.jobs, services.job_upkeep, services.audit, settings)
        assert len(await services.job_upkeep.enqueue_scheduled()) == 2
    finally:
        await services.close()


def test_scheduled_runs_are_jobs_a_worker_runs(tmp_path: Path, database_url: str) -> None:
    seeded = asyncio.run(_seeded(database_url))
    settings = make_settings(
        tmp_path, database_url, housekeeping={"enabled": True, "backup_prune": True}
    )
    asyncio.run(_enqueue_slots(settings))
    asyncio.run(_enqueue_slots(settings))  # another process, the same slots: nothing new

    listed = _cli(tmp_path, database_url, "jobs", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    kinds = sorted((j["kind"], j["state"]) for j in json.loads(listed.stdout)["items"])
    assert ("backup.prune", "queued") in kinds
    assert ("housekeeping", "queued") in kinds
    assert len([k for k in kinds if k[0] in ("backup.prune", "housekeeping")]) == 2

    env = cli_environment(tmp_path / "data")
    env.update(
        AUTH_DATABASE__URL=database_url,
        AUTH_MASTER_KEY=TEST_MASTER_KEY,
        AUTH_HOUSEKEEPING__BACKUP_PRUNE="true",
    )
    worked = run_cli(["jobs", "work", "--until-idle"], env, tmp_path)
    assert worked.returncode == 0, worked.stderr
    done = _cli(
        tmp_path, database_url, "jobs", "list", "--kind", "housekeeping", "--format", "json"
    )
    (job,) = json.loads(done.stdout)["items"]
    assert job["state"] == "done"
    after, runs = asyncio.run(_state(database_url))
    (run,) = runs
    assert run.request_id == "schedule"
    assert after["sessions"] == seeded.kept["sessions"]
    pruned = _cli(
        tmp_path, database_url, "jobs", "list", "--kind", "backup.prune", "--format", "json"
    )
    assert [j["state"] for j in json.loads(pruned.stdout)["items"]] == ["done"]


def test_audit_archives_listed_and_read(tmp_path: Path, database_url: str) -> None:
    seeded = asyncio.run(_seeded(database_url))
    env = cli_environment(tmp_path / "data")
    env.update(
        AUTH_DATABASE__URL=database_url,
        AUTH_MASTER_KEY=TEST_MASTER_KEY,
        AUTH_AUDIT__ARCHIVE="true",
        AUTH_BACKUP__KEY="q0wbm4bIzhaPbhc7CqgF4WU2dqmeO0qmPkVQt0yCzUY",
    )
    done = run_cli(["housekeeping", "run", "--confirm"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    listed = run_cli(["housekeeping", "archives", "--format", "json"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    (archive,) = json.loads(listed.stdout)
    shown = run_cli(["housekeeping", "archive-show", archive["name"]], env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    events_archived = [json.loads(line) for line in shown.stdout.splitlines()]
    assert len(events_archived) == seeded.purged["audit_events"]
    assert {e["type"] for e in events_archived} == {"login.succeeded"}
    missing = run_cli(["housekeeping", "archive-show", "no-such-archive"], env, tmp_path)
    one_line_error(missing)
