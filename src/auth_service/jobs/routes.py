"""Admin API over the job queue: list and read jobs, retry or discard a dead one. Requires
the ``admin`` role (docs/operations/jobs.md)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from auth_service.jobs.kinds import JobState
from auth_service.jobs.schemas import JobOut, JobPage
from auth_service.web.deps import AdminPrincipal, ServicesDep
from auth_service.web.openapi import problem_responses

router = APIRouter(prefix="/v1/admin/jobs", tags=["admin"], responses=problem_responses(401, 403))


@router.get("", response_model=JobPage)
async def list_jobs(
    _: AdminPrincipal,
    services: ServicesDep,
    state: JobState | None = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> JobPage:
    """Jobs newest first; filter by state (``dead``: the dead letters) and kind."""
    jobs, total = await services.job_admin.list(
        state=state.value if state else None, kind=kind, limit=limit, offset=offset
    )
    return JobPage(items=[JobOut.of(j) for j in jobs], total=total, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=JobOut, responses=problem_responses(404))
async def get_job(job_id: uuid.UUID, _: AdminPrincipal, services: ServicesDep) -> JobOut:
    """One job; a sealed payload (mail) is never shown."""
    return JobOut.of(await services.job_admin.get(job_id))


@router.post("/{job_id}/retry", response_model=JobOut, responses=problem_responses(404, 409))
async def retry_job(job_id: uuid.UUID, principal: AdminPrincipal, services: ServicesDep) -> JobOut:
    """Queue a dead job again, due now, with a fresh set of attempts (audited)."""
    return JobOut.of(await services.job_admin.retry(job_id, principal.context))


@router.post("/{job_id}/discard", response_model=JobOut, responses=problem_responses(404, 409))
async def discard_job(
    job_id: uuid.UUID, principal: AdminPrincipal, services: ServicesDep
) -> JobOut:
    """Give up on a dead job: it never runs, its sealed payload is deleted (audited)."""
    return JobOut.of(await services.job_admin.discard(job_id, principal.context))
