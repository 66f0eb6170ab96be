"""`auth-service jobs ...`: the durable job queue for operators (docs/operations/jobs.md)."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from auth_service.cli.common import cli_services, err, loaded_settings, out, run_async
from auth_service.cli.users_cmd import CLI_CONTEXT
from auth_service.jobs.admin import JobView
from auth_service.jobs.errors import JobNotDead, JobNotFound
from auth_service.jobs.kinds import JobState

app = typer.Typer(
    help="The durable job queue: dead letters, retries, workers.", no_args_is_help=True
)

ERRORS = {
    JobNotFound: lambda _exc: "no such job",
    JobNotDead: lambda exc: (
        f"the job is {exc.state}, not dead: only dead jobs are retried or discarded"
    ),
}


class Format(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", help="table or json")]
JobId = Annotated[uuid.UUID, typer.Argument(help="the job's id (jobs list)")]


def _when(view: JobView) -> str:
    return view.run_at.isoformat(timespec="seconds")


@app.command("list")
def list_jobs(
    ctx: typer.Context,
    state: Annotated[JobState | None, typer.Option(help="e.g. dead: the dead letters")] = None,
    kind: Annotated[str | None, typer.Option(help="e.g. mail")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
    format: FormatOption = Format.table,
) -> None:
    """Jobs, newest first."""
    settings = loaded_settings(ctx).settings

    @run_async
    async def _run() -> None:
        async with cli_services(settings) as services:
            jobs, total = await services.job_admin.list(
                state=state.value if state else None, kind=kind, limit=limit
            )
        if format is Format.json:
            out.print_json(json.dumps({"items": [j.as_dict() for j in jobs], "total": total}))
            return
        table = Table("id", "kind", "state", "attempts", "due", "last error")
        for j in jobs:
            table.add_row(
                str(j.id),
                j.kind,
                j.state,
                f"{j.attempts}/{j.max_attempts}",
                _when(j),
                (j.last_error or "-")[:80],
            )
        out.print(table)
        out.print(f"{len(jobs)} of {total} jobs")

    _run()


@app.command("show")
def show(ctx: typer.Context, job_id: JobId, format: FormatOption = Format.table) -> None:
    """One job (a sealed payload, such as a mail's, is never shown)."""
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            job = await services.job_admin.get(job_id)
        if format is Format.json:
            out.print_json(json.dumps(job.as_dict()))
            return
        for name, value in job.as_dict().items():
            if name == "payload":
                value = "(sealed)" if job.sealed else json.dumps(value)
            out.print(f"{name:>13}: {'-' if value is None else value}")

    run_async(_run, errors=ERRORS)()


@app.command("retry")
def retry(ctx: typer.Context, job_id: JobId) -> None:
    """Queue a dead job again, due now, with a fresh set of attempts."""
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            job = await services.job_admin.retry(job_id, CLI_CONTEXT)
        out.print(f"job {job.id} ({job.kind}) is queued again")

    run_async(_run, errors=ERRORS)()


@app.command("discard")
def discard(
    ctx: typer.Context,
    job_id: JobId,
    confirm: Annotated[bool, typer.Option("--confirm", help="discard (default: dry run)")] = False,
) -> None:
    """Give up on a dead job: it never runs, and its sealed payload is deleted."""
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            if not confirm:
                job = await services.job_admin.get(job_id)
                if job.state != JobState.dead:
                    raise JobNotDead(job.state)
                out.print(f"would discard job {job.id} ({job.kind}, {job.last_error or '-'})")
                out.print("dry run: add --confirm to discard")
                return
            job = await services.job_admin.discard(job_id, CLI_CONTEXT)
        out.print(f"job {job.id} ({job.kind}) is discarded")

    run_async(_run, errors=ERRORS)()


@app.command("work")
def work(
    ctx: typer.Context,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="jobs at once (default: jobs.workers, at least 1)"),
    ] = None,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="exit once nothing is due and nothing runs")
    ] = False,
) -> None:
    """Run a job worker apart from the servers (set jobs.workers: 0 on them to run jobs only
    here). SIGTERM or Ctrl-C: running jobs finish within jobs.drain_seconds, or are released."""
    settings = loaded_settings(ctx).settings

    @run_async
    async def _run() -> None:
        from auth_service.backup.scheduled import attach as attach_backup
        from auth_service.jobs.worker import JobWorker

        async with cli_services(settings) as services:
            attach_backup(services, settings)
            worker = JobWorker(
                services.jobs,
                services.job_upkeep,
                concurrency=concurrency or max(settings.jobs.workers, 1),
                scheduling=not until_idle,
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            worker.start()
            err.print(
                f"jobs worker {worker.name}: {worker.concurrency} at a time, kinds "
                f"{', '.join(services.jobs.kinds.names())}"
            )
            waits = [asyncio.create_task(stop.wait())]
            if until_idle:
                waits.append(asyncio.create_task(worker.idle.wait()))
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await worker.stop(settings.jobs.drain_seconds)

    if concurrency is None and settings.jobs.workers == 0:
        err.print("jobs.workers is 0 (the servers run no jobs): this worker runs 1 at a time")
    _run()
