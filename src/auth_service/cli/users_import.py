"""`auth-service users import FILE`: accounts from another system, streamed from NDJSON in
batches, with progress, a report of the refused lines, and idempotent by external id
(accounts.importing, ADR 0921)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from auth_service.accounts.importing import ImportLine, ImportReport, Rejected, parse_line
from auth_service.cli.common import (
    FormatOption,
    ListFormat,
    cli_services,
    err,
    fail,
    list_format,
    loaded_settings,
    note,
    run_async,
)
from auth_service.cli.users_cmd import CLI_CONTEXT


def import_users(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="NDJSON: one account per line")],
    batch_size: Annotated[int, typer.Option(min=1, max=10000, help="lines per transaction")] = 500,
    rejects: Annotated[
        Path | None,
        typer.Option(help="where the refused lines are reported (default: FILE.rejected.ndjson)"),
    ] = None,
    format: FormatOption = "table",
) -> None:
    """Import accounts (external_id, email, name, password_hash, email_verified, locale per
    line). argon2, bcrypt and Django PBKDF2 hashes are kept and upgraded at the next sign-in;
    an external id already imported is skipped, so a file can be imported again."""
    fmt = list_format(format)
    settings = loaded_settings(ctx).settings
    if not file.is_file():
        raise fail(f"{file} is not a file")
    report_path = rejects or file.with_name(file.name + ".rejected.ndjson")

    async def _run() -> ImportReport:
        report = ImportReport()
        bar = Progress(
            TextColumn("importing"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=not err.is_terminal,
        )
        async with cli_services(settings) as services:
            importer = services.accounts.imports
            with file.open("rb") as lines, bar:
                task = bar.add_task("import", total=file.stat().st_size)
                batch: list[ImportLine] = []
                for number, raw in enumerate(lines, start=1):
                    bar.advance(task, len(raw))
                    parsed = parse_line(number, raw)
                    if isinstance(parsed, Rejected):
                        report.rejected.append(parsed)
                    elif parsed is not None:
                        batch.append(parsed)
                    if len(batch) >= batch_size:
                        await importer.store(batch, report)
                        batch = []
                if batch:
                    await importer.store(batch, report)
            await importer.finish(report, file.name, CLI_CONTEXT)
        return report

    report = run_async(_run)()
    report.rejected.sort(key=lambda r: r.number)
    if report.rejected:
        with report_path.open("w") as fh:
            for rejected in report.rejected:
                fh.write(json.dumps(rejected.as_dict()) + "\n")
    counts = report.counts()
    if fmt is ListFormat.json:
        typer.echo(json.dumps({**counts, "rejects": str(report_path) if report.rejected else None}))
    else:
        typer.echo(
            f"imported {counts['imported']}, already there {counts['skipped']}, "
            f"refused {counts['rejected']}"
        )
        if report.rejected:
            note(f"refused lines (number and reason): {report_path}")
