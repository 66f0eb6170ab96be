"""`backup prune` as a scheduled job (``housekeeping.backup_prune``): once a day, by one worker
of the deployment, the same way as housekeeping (ADR 0910). Registered by the processes that
run long-lived workers (the server, `auth-service jobs work`)."""

from __future__ import annotations

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.backup.catalog import Catalog
from auth_service.config.settings import Settings
from auth_service.jobs.kinds import Job, JobKind
from auth_service.jobs.queue import JobQueue
from auth_service.jobs.upkeep import JobUpkeep

BACKUP_PRUNE_KIND = "backup.prune"
EVERY_SECONDS = 24 * 3600
TIMEOUT_SECONDS = 3600.0
SCHEDULED = RequestContext(request_id="schedule", user_agent="auth-service backup prune")


def register_prune(
    jobs: JobQueue, upkeep: JobUpkeep, audit: AuditService, settings: Settings
) -> None:
    """Register the kind and, when ``housekeeping.backup_prune`` is on, its daily schedule
    (once per queue: a second call changes nothing)."""
    if BACKUP_PRUNE_KIND in jobs.kinds.names():
        return

    async def prune(job: Job) -> None:
        catalog = Catalog(settings.backup, settings.data_dir)
        plan = await catalog.plan_prune()
        await catalog.apply_prune(plan)
        await audit.record(
            events.BACKUP_PRUNED,
            SCHEDULED,
            details={"backups": len(plan.delete_backups), "wal_files": len(plan.delete_wal)},
        )

    jobs.register(
        JobKind(BACKUP_PRUNE_KIND, prune, max_attempts=3, timeout_seconds=TIMEOUT_SECONDS)
    )
    if settings.housekeeping.backup_prune:
        upkeep.schedule(BACKUP_PRUNE_KIND, EVERY_SECONDS)
