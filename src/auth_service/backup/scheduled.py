"""What housekeeping needs of the backup machinery: `backup prune` as a scheduled job
(``housekeeping.backup_prune``: once a day, by one worker of the deployment, the same way as
housekeeping, ADR 0910), and the audit archive (``audit.archive``). Attached by the processes
that run housekeeping (the server, `auth-service jobs work`, `housekeeping run`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.backup.manifest import ObjectRecord
from auth_service.config.settings import Settings
from auth_service.jobs.kinds import Job, JobKind
from auth_service.jobs.queue import JobQueue
from auth_service.jobs.upkeep import JobUpkeep
from auth_service.services import Services

if TYPE_CHECKING:
    # The catalog brings obstore (a Rust extension, ~4 MiB resident): imported where a backup
    # object is written or read, not by every serving worker that registers the kinds.
    from auth_service.backup.catalog import Catalog

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
        from auth_service.backup.catalog import Catalog

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


AUDIT_PREFIX = "audit/"


class AuditArchive:
    """Writes audit archive objects to every backup destination: compressed and sealed like a
    backup object (backup.key), with a record of its digests beside it (``<name>.json``)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    async def __call__(self, name: str, data: bytes) -> None:
        async def source() -> AsyncIterator[bytes]:
            yield data

        record = await self.catalog.put_object(AUDIT_PREFIX + name, source())
        for storage in self.catalog.storages:
            await storage.put_bytes(
                AUDIT_PREFIX + name + ".json", record.model_dump_json().encode()
            )

    async def read(self, name: str) -> bytes:
        """An archive's JSON lines, checked against its digests."""
        raw = await self.catalog.primary.get_bytes(AUDIT_PREFIX + name + ".json")
        record = ObjectRecord.model_validate_json(raw)
        return b"".join([piece async for piece in self.catalog.open_object(record)])

    async def names(self) -> list[str]:
        found = await self.catalog.primary.list(AUDIT_PREFIX)
        return sorted(
            info.name.removeprefix(AUDIT_PREFIX)
            for info in found
            if not info.name.endswith(".json")
        )


def attach(services: Services, settings: Settings) -> None:
    """Give this process's housekeeping the audit archive (when ``audit.archive``) and register
    the backup prune kind and schedule."""
    register_prune(services.jobs, services.job_upkeep, services.audit, settings)
    if settings.audit.archive:
        from auth_service.backup.catalog import Catalog

        services.housekeeping.archive = AuditArchive(Catalog(settings.backup, settings.data_dir))
