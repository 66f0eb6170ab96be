"""`auth-service backup ...`: encrypted backups, WAL archiving, restore, verification."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from auth_service.backup import engines, observe
from auth_service.backup.catalog import Catalog
from auth_service.backup.errors import BackupError, MissingObject
from auth_service.cli.common import EXIT_ERROR, err, fail, loaded_settings, out, run_async
from auth_service.config.settings import Settings

app = typer.Typer(help="Encrypted backups, WAL archiving, restore and verification.")

EXIT_NOT_FOUND = 3


def say(message: str) -> None:
    out.print(message, soft_wrap=True, markup=False)


def _settings(ctx: typer.Context) -> Settings:
    return loaded_settings(ctx).settings


def _catalog(settings: Settings) -> Catalog:
    try:
        return Catalog(settings.backup, settings.data_dir)
    except BackupError as exc:
        raise fail(str(exc)) from None


def _run(coro_fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def wrapped() -> None:
        await coro_fn()

    try:
        run_async(wrapped)()
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
    if kind not in ("full", "config", "logical"):
        raise fail("--kind must be full, config or logical")
    settings = _settings(ctx)
    catalog = _catalog(settings)

    async def go() -> None:
        started = time.monotonic()
        try:
            with _progress(f"backup {kind}") as advance:
                manifest = await engines.run_backup(settings, catalog, kind, advance)
        except BaseException:
            observe.record_failure(kind)
            raise
        seconds = time.monotonic() - started
        observe.record_success(manifest, seconds)
        say(
            f"backup {manifest.id}: {manifest.plain_bytes} bytes -> {manifest.stored_bytes} "
            f"stored in {seconds:.1f}s (key {manifest.key_id})"
        )

    _run(go)


@app.command("list")
def list_backups(
    ctx: typer.Context,
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Backups in the primary destination, oldest first."""
    settings = _settings(ctx)
    catalog = _catalog(settings)

    async def go() -> None:
        manifests = await catalog.manifests()
        if format == "json":
            out.print_json(json.dumps([m.summary() for m in manifests]))
            return
        table = Table("id", "kind", "engine", "finished", "stored", "schema", "key")
        for m in manifests:
            table.add_row(
                m.id,
                m.kind,
                m.engine,
                m.stop_time.isoformat() if m.stop_time else "-",
                str(m.stored_bytes),
                m.schema_revision or "-",
                m.key_id,
            )
        out.print(table)

    _run(go)


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

    async def go() -> None:
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

    _run(go)


@app.command("restore")
def restore(
    ctx: typer.Context,
    target: Annotated[Path, typer.Option(help="new data directory (PostgreSQL) or file (SQLite)")],
    backup_id: Annotated[str | None, typer.Argument(help="default: the newest full backup")] = None,
    to_time: Annotated[
        str | None, typer.Option(help="point in time (ISO 8601, PostgreSQL only)")
    ] = None,
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
    """Restore a backup, or the database as it was at --to-time, into a new location."""
    settings = _settings(ctx)
    catalog = _catalog(settings)
    when = _parse_time(to_time) if to_time else None

    async def go() -> None:
        from auth_service.backup import pgtools

        manifest = await catalog.newest_before(when) if when else await catalog.manifest(backup_id)
        with _progress(f"restore {manifest.id}") as advance:
            if manifest.engine == "sqlite":
                if when:
                    raise BackupError(
                        "point-in-time recovery needs PostgreSQL (SQLite has no WAL archive)"
                    )
                await engines.restore_sqlite(catalog, manifest, target, advance)
                say(f"restored {manifest.id} to {target}")
                return
            if manifest.kind in ("logical", "config"):
                await engines.restore_file(catalog, manifest, target, advance)
                say(f"restored {manifest.id} to {target}")
                if manifest.kind == "logical":
                    say(f"load it with: pg_restore --no-owner -d <database URL> {target}")
                return
            if manifest.engine != "postgresql":
                raise BackupError(f"{manifest.id} is a {manifest.kind} backup; restore a full one")
            command = None if stage_wal or not when else _wal_fetch_command(ctx)
            result = await engines.restore_postgres(
                catalog, manifest, target, to_time=when, restore_command=command, progress=advance
            )
        say(f"restored base backup {manifest.id} into {target}")
        if start_port is not None:
            cluster = pgtools.Cluster(
                target.parent, start_port, settings.backup.pg_bin_dir, data=target
            )
            await cluster.start()
            await cluster.wait_ready(primary=True, within=300)
            say(f"PostgreSQL is up on 127.0.0.1:{start_port} (promoted)")
        elif result.manifest.engine == "postgresql":
            say("start it with pg_ctl -D <target> start (as the postgres user)")

    _run(go)


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

    async def go() -> None:
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

    _run(go)


@app.command("wal-push")
def wal_push(
    ctx: typer.Context, path: Annotated[Path, typer.Argument(help="%p from archive_command")]
) -> None:
    """Archive one WAL file (archive_command = 'auth-service backup wal-push %p')."""
    settings = _settings(ctx)
    catalog = _catalog(settings)
    if not path.is_file():
        raise fail(f"{path} does not exist (archive_command passes %p relative to the data dir)")

    async def go() -> None:
        await catalog.wal_push(path)

    _run(go)


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

    async def go() -> None:
        await catalog.wal_fetch(name, dest)

    try:
        run_async(go)()
    except MissingObject:
        raise typer.Exit(EXIT_ERROR) from None
    except BackupError as exc:
        raise fail(str(exc)) from None


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

    async def go() -> None:
        stop = _stop_on_signals()
        await stream(settings, catalog, stop, on_push=lambda n: say(f"archived {n}"))

    _run(go)


@app.command("schedule")
def schedule(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option(help="one round (full + verify), then exit")] = False,
) -> None:
    """Long-running scheduler for Compose (Kubernetes uses CronJobs calling `backup run`)."""
    settings = _settings(ctx)
    catalog = _catalog(settings)

    async def go() -> None:
        stop = _stop_on_signals()
        next_full = next_verify = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_full:
                try:
                    started = time.monotonic()
                    manifest = await engines.run_backup(settings, catalog, "full")
                    observe.record_success(manifest, time.monotonic() - started)
                    say(f"backup {manifest.id} done")
                except BackupError as exc:
                    observe.record_failure("full")
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

    _run(go)
