"""Housekeeping as a scheduled job: one job per interval for the whole
deployment, run by whichever worker claims it (ADR 0910).

Every long-running worker (each serving process, `auth-service jobs work`) enqueues the job
of the current slot under a key naming the slot; the table keeps one job per key, and the
queue's lease lets one worker run it at a time. A worker that dies mid-run leaves the job to
another once its lease expires, and a run that fails is retried with backoff.
"""

from __future__ import annotations

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.config.settings import Settings
from auth_service.housekeeping.purge import Housekeeping, Report
from auth_service.jobs.kinds import Job, JobKind
from auth_service.jobs.queue import JobQueue
from auth_service.jobs.upkeep import JobUpkeep

HOUSEKEEPING_KIND = "housekeeping"
# A run over a large backlog takes minutes; the lease is renewed while it runs.
RUN_TIMEOUT_SECONDS = 3600.0
SCHEDULED = RequestContext(request_id="schedule", user_agent="auth-service housekeeping")


async def record_run(audit: AuditService, report: Report, ctx: RequestContext) -> None:
    """The audit event of a run that deleted (a dry run records nothing)."""
    await audit.record(
        events.HOUSEKEEPING_RUN,
        ctx,
        details={"total": report.total, "rows": {t.table: t.rows for t in report.tables}},
    )


def register(
    jobs: JobQueue,
    upkeep: JobUpkeep,
    housekeeping: Housekeeping,
    audit: AuditService,
    settings: Settings,
) -> None:
    """Register the kind (any worker can run it) and, as configured, its schedule."""

    async def run_housekeeping(job: Job) -> None:
        report = await housekeeping.run()
        if report.total:  # an idle round leaves the job row (and its metrics), not an event
            await record_run(audit, report, SCHEDULED)

    jobs.register(
        JobKind(
            HOUSEKEEPING_KIND, run_housekeeping, max_attempts=3, timeout_seconds=RUN_TIMEOUT_SECONDS
        )
    )
    if settings.housekeeping.enabled:
        upkeep.schedule(HOUSEKEEPING_KIND, settings.housekeeping.interval_minutes * 60)
