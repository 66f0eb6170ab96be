"""`auth-service housekeeping ...`: purge expired and finished rows now
(docs/operations/housekeeping.md). Like every destructive command it is a dry run unless
``--confirm`` is given."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from auth_service.cli.backup_cmd import BACKUP_ERRORS
from auth_service.cli.common import (
    EXIT_USAGE,
    FormatOption,
    ListFormat,
    cli_services,
    fail,
    list_format,
    loaded_settings,
    note,
    print_records,
    run_async,
)
from auth_service.cli.users_cmd import CLI_CONTEXT
from auth_service.config.settings import Settings
from auth_service.housekeeping.schedule import record_run

if TYPE_CHECKING:
    from auth_service.backup.scheduled import AuditArchive

app = typer.Typer(
    help="Purge expired sessions, tokens, codes, flows, finished jobs and old audit events.",
    no_args_is_help=True,
)


@app.command("run")
def run(
    ctx: typer.Context,
    confirm: Annotated[bool, typer.Option("--confirm", help="delete (default: dry run)")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="count only (the default without --confirm)")
    ] = False,
    format: FormatOption = "table",
) -> None:
    """Purge every table now, in batches (housekeeping.batch_size rows per statement).
    Without --confirm: count what would be deleted and delete nothing. Progress per table
    goes to stderr, the counts to stdout."""
    if confirm and dry_run:
        raise fail("--dry-run and --confirm contradict each other: give one", EXIT_USAGE)
    fmt = list_format(format)
    settings = loaded_settings(ctx).settings

    def progress(table: str, rows: int) -> None:
        note(f"{table}: {rows} {'would go' if not confirm else 'purged'}")

    @run_async
    async def _run() -> None:
        from auth_service.backup.scheduled import attach as attach_backup

        async with cli_services(settings) as services:
            attach_backup(services, settings)
            report = await services.housekeeping.run(dry_run=not confirm, progress=progress)
            if confirm:
                await record_run(services.audit, report, CLI_CONTEXT)
        if fmt is ListFormat.json:
            typer.echo(json.dumps(report.as_dict(), indent=2))
        else:
            records = [t.as_dict() for t in report.tables]
            print_records(records, ("table", "rows", "seconds"), ListFormat.table)
        note(f"{'deleted' if confirm else 'would delete'} {report.total} rows")
        if not confirm:
            note("dry run: add --confirm to delete")

    _run()


@app.command("sizes")
def sizes(ctx: typer.Context, format: FormatOption = "table") -> None:
    """Rows in each table housekeeping looks after."""
    fmt = list_format(format)
    settings = loaded_settings(ctx).settings

    @run_async
    async def _run() -> None:
        async with cli_services(settings) as services:
            found = await services.housekeeping.sizes()
        print_records([{"table": t, "rows": n} for t, n in found.items()], ("table", "rows"), fmt)

    _run()


def _archive(settings: Settings) -> AuditArchive:
    from auth_service.backup.catalog import Catalog
    from auth_service.backup.scheduled import AuditArchive

    return AuditArchive(Catalog(settings.backup, settings.data_dir))


@app.command("archives")
def archives(ctx: typer.Context, format: FormatOption = "table") -> None:
    """The audit archives on the primary backup destination (audit.archive), oldest first."""
    fmt = list_format(format)
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        names = await _archive(settings).names()
        print_records([{"name": n} for n in names], ("name",), fmt)

    run_async(_run, errors=BACKUP_ERRORS)()


@app.command("archive-show")
def archive_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="an archive's name (housekeeping archives)")],
) -> None:
    """Print an audit archive's events, one JSON object a line (opened with backup.key and
    checked against its digests)."""
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        data = await _archive(settings).read(name)
        sys.stdout.buffer.write(data)

    run_async(_run, errors=BACKUP_ERRORS)()
