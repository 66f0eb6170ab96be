"""`auth-service backup ...`: encrypted backups, WAL archiving, restore, verification."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from auth_service.backup import engines, observe, pgtools
from auth_service.backup.catalog import Catalog
from auth_service.backup.engines import Restored
from auth_service.backup.errors import BackupError, MissingObject
from auth_service.backup.manifest import BackupKind
from auth_service.cli.common import (
    EXIT_ERROR,
    ErrorLines,
    FormatOption,
    err,
    fail,
    list_format,
    loaded_settings,
    out,
    print_records,
    run_async,
)
from auth_service.config.settings import Settings

app = typer.Typer(help="Encrypted backups, WAL archiving, restore and verification.")

# Backup errors say what went wrong and what to do: they are the error line as they are.
BACKUP_ERRORS: ErrorLines = {BackupError: str}

# The columns of `backup list`'s table; --format json has every key of the manifest summary.
BACKUP_COLUMNS = ("id", "kind", "engine", "stop_time", "stored_bytes", "schema_revision", "key_id")


def say(message: str) -> None:
    out.print(message, soft_wrap=True, markup=False)


def _settings(ctx: typer.Context) -> Settings:
    return loaded_settings(ctx).settings


def _catalog(settings: Settings) -> Catalog:
    try:
        return Catalog(settings.backup, settings.data_dir)
    except BackupError as exc:
        raise fail(str(exc)) from None


@contextlib.contextmanager
def _progress(label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A byte progress bar on stderr; silent when stderr is not a terminal."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    with bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"--to-time {value!r} is not an ISO 8601 time (2026-01-31T12:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("run")
def run_backup(
    ctx: typer.Context,
    kind: Annotated[
        str, typer.Option(help="full (the database), config, or logical (pg_dump export)")
    ] = "full",
) -> None:
    """Take a backup now and store it in every destination."""
    try:
        backup_kind = BackupKind(kind)
    except ValueError:
        raise fail("--kind must be full, config or logical") from None
    settings = _settings(ctx)
    catalog = _catalog(settings)

    async def take_backup() -> None:
        started = time.monotonic()
        try:
            with _progress(f"backup {backup_kind}") as advance:
                manifest = await engines.run_backup(settings, catalog, backup_kind, advance)
        except BaseException:
            observe.record_failure(backup_kind)
            raise
        seconds = time.monotonic() - started
        observe.record_success(manifest, seconds)
        say(
            f"backup {manifest.id}: {manifest.plain_bytes} bytes -> {manifest.stored_bytes} "
            f"stored in {seconds:.1f}s (key {manifest.key_id})"
        )

    run_async(take_backup, errors=BACKUP_ERRORS)()


@app.command("list")
def list_backups(ctx: typer.Context, format: FormatOption = "table") -> None:
    """Backups in the primary destination, oldest first."""
    fmt = list_format(format)
    settings = _settings(ctx)
    catalog = _catalog(settings)

    async def show_backups() -> None:
        manifests = await catalog.manifests()
        print_records([m.summary() for m in manifests], BACKUP_COLUMNS, fmt)

    run_async(show_backups, errors=BACKUP_ERRORS)()


@app.command("verify")
def verify(
    ctx: typer.Context,
    backup_id: Annotated[str | None, typer.Argument(help="default: the newest full backup")] = None,
    restore_test: Annotated[
        bool, typer.Option("--restore-test", help="also restore into a throwaway database")
    ] = False,
    probe_email: Annotated[
        str | None, typer.Option(help="a user who must be able to log in after restore")
    ] = None,
    probe_password_file: Annotated[Path | None, typer.Option(help="that user's password")] = None,
) -> None:
    """Re-read a backup in every destination, check checksums and decrypt it."""
    settings = _settings(ctx)
    catalog = _catalog(settings)
    probe = None
    if probe_email:
        if probe_password_file is None:
            raise fail("--probe-email needs --probe-password-file")
        probe = (probe_email, probe_password_file.read_text().strip())

    async def verify_backup() -> None:
        with _progress("verify") as advance:
            report = await catalog.verify(backup_id, advance)
        problems = list(report.problems)
        notes: list[str] = []
        if restore_test and report.ok:
            from auth_service.backup.verify import restore_test as run_restore_test

            tested = await run_restore_test(settings, catalog, report.backup_id, probe=probe)
            problems += tested.problems
            notes += tested.notes
        for note in notes:
            say(f"  {note}")
        if problems:
            for problem in problems:
                err.print(f"[bold red]problem:[/] {problem}", soft_wrap=True)
            raise fail(f"backup {report.backup_id} failed verification")
        observe.record_verification()
        await catalog.record_verification(report, restore_test)
        say(
            f"backup {report.backup_id} verified: {report.objects} objects, "
            f"{report.stored_bytes} bytes" + (", restore test passed" if restore_test else "")
        )

    run_async(verify_backup, errors=BACKUP_ERRORS)()


@app.command("restore")
def restore(
    ctx: typer.Context,
    target: Annotated[Path, typer.Option(help="new data directory (PostgreSQL) or file (SQLite)")],
    backup_id: Annotated[str | None, typer.Argument(help="default: the newest full backup")] = None,
    to_time: Annotated[
        str | None, typer.Option(help="point in time (ISO 8601, PostgreSQL only)")
    ] = None,
    to_end: Annotated[
        bool,
        typer.Option(
            "--to-end",
            help="replay every archived WAL file, then promote: the newest state the archive "
            "holds (PostgreSQL only)",
        ),
    ] = False,
    stage_wal: Annotated[
        bool,
        typer.Option(
            "--stage-wal",
            help="decrypt the WAL next to the data instead of restore_command=wal-fetch",
        ),
    ] = False,
    start_port: Annotated[
        int | None, typer.Option(help="start the restored server on this port and wait")
    ] = None,
) -> None:
    """Restore a backup, or the database as it was at --to-time or at the end of the WAL
    archive (--to-end), into a new location."""
    settings = _settings(ctx)
    catalog = _catalog(settings)
    if to_time and to_end:
        raise fail("give --to-time or --to-end, not both")
    when = _parse_time(to_time) if to_time else None
    command = None if stage_wal or not (when or to_end) else _wal_fetch_command(ctx)

    async def restore_backup() -> None:
        manifest = await catalog.newest_before(when) if when else await catalog.manifest(backup_id)
        with _progress(f"restore {manifest.id}") as advance:
            restored = await engines.run_restore(
                catalog,
                manifest,
                target,
                to_time=when,
                to_end=to_end,
                restore_command=command,
                progress=advance,
            )
        if restored is not Restored.data_directory:
            say(f"restored {manifest.id} to {target}")
            if restored is Restored.dump:
                say(f"load it with: pg_restore --no-owner -d <database URL> {target}")
            return
        say(f"restored base backup {manifest.id} into {target}")
        if start_port is None:
            say("start it with pg_ctl -D <target> start (as the postgres user)")
            return
        cluster = pgtools.Cluster(
            target.parent, start_port, settings.backup.pg_bin_dir, data=target
        )
        await cluster.start()
        await cluster.wait_ready(primary=True, within=300)
        say(f"PostgreSQL is up on 127.0.0.1:{start_port} (promoted)")

    run_async(restore_backup, errors=BACKUP_ERRORS)()


def _wal_fetch_command(ctx: typer.Context) -> str:
    argv = [sys.argv[0]]
    config = (ctx.find_root().obj or {}).get("config")
    if config:
        argv += ["--config", str(Path(config).resolve())]
    return shlex.join([*argv, "backup", "wal-fetch"]) + " %f %p"


@app.command("prune")
def prune(
    ctx: typer.Context,
    confirm: Annotated[bool, typer.Option("--confirm", help="delete (default: dry run)")] = False,
) -> None:
    """Apply retention: keep N full backups, the PITR window and the WAL they need."""
    settings = _settings(ctx)
    catalog = _catalog(settings)

    async def prune_backups() -> None:
        plan = await catalog.plan_prune()
        verb = "deleting" if confirm else "would delete"
        for backup_id in plan.delete_backups:
            say(f"{verb} backup {backup_id}")
        say(f"{verb} {len(plan.delete_wal)} WAL files (older than {plan.oldest_needed_wal})")
        say(f"keeping {len(plan.keep)} backups: {', '.join(plan.keep) or '-'}")
        if confirm:
            await catalog.apply_prune(plan)
        else:
            say("dry run: add --confirm to delete")

    run_async(prune_backups, errors=BACKUP_ERRORS)()


@app.command("wal-push")
def wal_push(
    ctx: typer.Context, path: Annotated[Path, typer.Argument(help="%p from archive_command")]
) -> None:
    """Archive one WAL file (archive_command = 'auth-service backup wal-push %p')."""
    settings = _settings(ctx)
    catalog = _catalog(settings)
    if not path.is_file():
        raise fail(f"{path} does not exist (archive_command passes %p relative to the data dir)")

    async def push_wal_file() -> None:
        await catalog.wal_push(path)

    run_async(push_wal_file, errors=BACKUP_ERRORS)()


@app.command("wal-fetch")
def wal_fetch(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="%f from restore_command")],
    dest: Annotated[Path, typer.Argument(help="%p from restore_command")],
) -> None:
    """Restore one archived WAL file (restore_command = '... wal-fetch %f %p').

    Exits 1 quietly when the file is not archived: PostgreSQL asks for files that may not
    exist (the next timeline's history) and treats that as the end of the archive.
    """
    settings = _settings(ctx)
    catalog = _catalog(settings)

    async def fetch_wal_file() -> None:
        try:
            await catalog.wal_fetch(name, dest)
        except MissingObject:
            raise typer.Exit(EXIT_ERROR) from None

    run_async(fetch_wal_file, errors=BACKUP_ERRORS)()


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM/SIGINT, so long-running commands finish their current step."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


@app.command("wal-stream")
def wal_stream(ctx: typer.Context) -> None:
    """Archive WAL continuously over the replication protocol (pg_receivewal), from anywhere
    that reaches the database. Runs until SIGTERM/SIGINT, then uploads what it has."""
    from auth_service.backup.walstream import wal_stream as stream

    settings = _settings(ctx)
    catalog = _catalog(settings)

    async def stream_wal() -> None:
        stop = _stop_on_signals()
        await stream(settings, catalog, stop, on_push=lambda n: say(f"archived {n}"))

    run_async(stream_wal, errors=BACKUP_ERRORS)()


@app.command("schedule")
def schedule(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option(help="one round (full + verify), then exit")] = False,
) -> None:
    """Long-running scheduler for Compose (Kubernetes uses CronJobs calling `backup run`)."""
    settings = _settings(ctx)
    catalog = _catalog(settings)

    async def run_schedule() -> None:
        stop = _stop_on_signals()
        next_full = next_verify = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_full:
                try:
                    started = time.monotonic()
                    manifest = await engines.run_backup(settings, catalog, BackupKind.full)
                    observe.record_success(manifest, time.monotonic() - started)
                    say(f"backup {manifest.id} done")
                except BackupError as exc:
                    observe.record_failure(BackupKind.full)
                    err.print(f"[bold red]backup failed:[/] {exc}")
                next_full = now + settings.backup.schedule_full_seconds
            if now >= next_verify:
                report = await catalog.verify()
                if report.ok:
                    observe.record_verification()
                    await catalog.record_verification(report, restore_tested=False)
                    say(f"verified {report.backup_id}")
                else:
                    err.print(f"[bold red]verification failed:[/] {report.problems}")
                next_verify = now + settings.backup.schedule_verify_seconds
            if once:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 30)

    run_async(run_schedule, errors=BACKUP_ERRORS)()
