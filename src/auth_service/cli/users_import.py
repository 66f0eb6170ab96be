"""`auth-service users import FILE`: accounts from another system, streamed from NDJSON in
batches, with progress, a report of the refused lines, and idempotent by external id
(accounts.importing, ADR 0921)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from auth_service.accounts.importing import ImportReport, Rejected, hash_parameters
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
from auth_service.security.passwords import FirebaseScrypt

CHUNK_BYTES = 256 * 1024


def _parameters(path: Path | None) -> FirebaseScrypt | None:
    if path is None:
        return None
    try:
        return hash_parameters(json.loads(path.read_text()))
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise fail(f"{path}: {exc}") from None


def import_users(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="NDJSON: one account per line")],
    batch_size: Annotated[int, typer.Option(min=1, max=10000, help="lines per transaction")] = 500,
    rejects: Annotated[
        Path | None,
        typer.Option(help="where the refused lines are reported (default: FILE.rejected.ndjson)"),
    ] = None,
    hash_parameters_file: Annotated[
        Path | None,
        typer.Option(
            "--hash-parameters",
            help="JSON file: the Firebase project's password hash parameters "
            "(base64_signer_key, base64_salt_separator, rounds, mem_cost)",
        ),
    ] = None,
    format: FormatOption = "table",
) -> None:
    """Import accounts (external_id, email, name, password_hash, email_verified, locale per
    line). argon2, bcrypt, PBKDF2, scrypt and Firebase scrypt hashes are kept and upgraded
    at the next sign-in; an external id already imported is skipped, so a file can be
    imported again."""
    fmt = list_format(format)
    settings = loaded_settings(ctx).settings
    if not file.is_file():
        raise fail(f"{file} is not a file")
    parameters = _parameters(hash_parameters_file)
    report_path = rejects or file.with_name(file.name + ".rejected.ndjson")
    report_path.unlink(missing_ok=True)  # a report of an earlier run would mislead

    async def _run() -> ImportReport:
        bar = Progress(
            TextColumn("importing"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=not err.is_terminal,
        )
        out: IO[str] | None = None

        async def refused(lines: list[Rejected]) -> None:
            nonlocal out
            if out is None:
                out = report_path.open("w")
            out.writelines(json.dumps(r.as_dict()) + "\n" for r in lines)

        async with cli_services(settings) as services:
            with file.open("rb") as source, bar:
                task = bar.add_task("import", total=file.stat().st_size)

                async def chunks() -> AsyncIterator[bytes]:
                    while chunk := source.read(CHUNK_BYTES):
                        bar.advance(task, len(chunk))
                        yield chunk

                report = ImportReport()
                try:
                    await services.accounts.imports.run(
                        chunks(),
                        refused,
                        batch_size=batch_size,
                        parameters=parameters,
                        report=report,
                    )
                finally:
                    if out is not None:
                        out.close()
            await services.accounts.imports.finish(report, file.name, CLI_CONTEXT)
        return report

    report = run_async(_run)()
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
