"""`auth-service dr ...`: replication status, failover, failback, and the automatic-failover
observer (`watch`, `rearm`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Annotated

import asyncpg  # type: ignore[import-untyped]
import typer
from rich.table import Table

from auth_service.audit import events
from auth_service.backup import pgtools
from auth_service.backup.errors import BackupError
from auth_service.backup.manifest import BackupKind
from auth_service.backup.storage import Storage, open_storage
from auth_service.cli.common import ErrorLines, err, fail, loaded_settings, out, run_async
from auth_service.config.backup import OBSERVER_ID
from auth_service.config.settings import Settings
from auth_service.db.engine import Backend, backend_of
from auth_service.dr.audit import CLI, record_dr_event
from auth_service.dr.auto import (
    FailoverRecord,
    Watcher,
    audit_failover,
    default_observer_id,
    store_destination,
)
from auth_service.dr.auto import rearm as rearm_lock
from auth_service.dr.service import DrError, DrReport, DrService, Repoint, StepTimer

app = typer.Typer(
    help="Disaster recovery: replication status, failover, failback, automatic-failover observer."
)


def _service(settings: Settings) -> DrService:
    if settings.dr.standby_url is None:
        raise fail("dr.standby_url is not set (AUTH_DR__STANDBY_URL_FILE): no standby to manage")
    if backend_of(settings.database_url) is not Backend.postgresql:
        raise fail("disaster recovery needs PostgreSQL (database.url)")
    return DrService(
        pgtools.ConnInfo.from_url(settings.database_url, settings.database),
        pgtools.ConnInfo.from_url(settings.dr.standby_url.get_secret_value(), settings.database),
        settings.dr,
    )


DR_ERRORS: ErrorLines = {
    DrError: str,
    BackupError: str,
    asyncpg.PostgresError: lambda exc: f"PostgreSQL refused a DR step ({exc}); check `dr status`",
}


def _print_steps(title: str, timer: StepTimer) -> None:
    for name, seconds in timer.steps:
        out.print(f"  {name}: {seconds:.3f}s", soft_wrap=True, markup=False)
    out.print(f"{title} in {timer.total:.2f}s", soft_wrap=True, markup=False)


async def _audit(settings: Settings, primary_url: str, event_type: str, report: DrReport) -> None:
    """Record the operation in the new primary. It has happened by now: a failed record is
    reported, not raised, so that nobody runs it a second time."""
    try:
        await record_dr_event(settings, primary_url, event_type, CLI, report.audit_details())
    except Exception as exc:  # whatever the database raised, the roles have changed
        message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        err.print(
            f"warning: could not record the audit event {event_type} ({message}); "
            "the operation itself succeeded: check `dr status`",
            soft_wrap=True,
            markup=False,
        )


def _write_url(path: Path, url: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(url + "\n")
    tmp.chmod(0o600)
    os.replace(tmp, path)


def _repoint_file(url_file: Path | None) -> Repoint:
    """How a failover or failback tells the services: rewrite ``url_file`` (the database URL
    file they read on restart), or nothing when there is none."""

    async def repoint(url: str) -> None:
        if url_file is not None:
            _write_url(url_file, url)

    return repoint


@app.command("status")
def status(
    ctx: typer.Context,
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Roles, LSNs, lag (bytes, seconds), sync state, timeline and the newest backup."""
    settings = loaded_settings(ctx).settings
    service = _service(settings)

    async def show_status() -> None:
        data = await service.status()
        newest = None
        if settings.backup.key is not None:
            from auth_service.backup.catalog import Catalog

            try:
                catalog = Catalog(settings.backup, settings.data_dir)
                per_destination = {}
                for storage in catalog.storages:
                    manifests = await catalog.manifests(storage)
                    full = [m for m in manifests if m.kind is BackupKind.full]
                    per_destination[storage.url] = full[-1].id if full else None
                newest = per_destination
            except BackupError as exc:
                newest = {"error": str(exc)}
        data["newest_backup"] = newest
        if format == "json":
            out.print_json(json.dumps(data, default=str))
            return
        table = Table("node", "address", "role", "lsn", "timeline", "lag bytes", "lag s", "sync")
        for node in data["nodes"]:
            replicas = node["replicas"]
            table.add_row(
                node["name"],
                node["address"],
                node["role"] + (" (fenced)" if node["read_only"] else ""),
                node["lsn"] or "-",
                str(node["timeline"] or "-"),
                str(replicas[0]["lag_bytes"] if replicas else node["lag_bytes"] or "-"),
                str(replicas[0]["lag_seconds"] if replicas else node["lag_seconds"] or "-"),
                ",".join(r["sync_state"] for r in replicas) or "-",
            )
        out.print(table)
        out.print(f"newest backup per destination: {newest}", soft_wrap=True, markup=False)

    run_async(show_status, errors=DR_ERRORS)()


@app.command("failover")
def failover(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="the standby to promote")] = "standby",
    max_lag_bytes: Annotated[int | None, typer.Option(help="refuse beyond this lag")] = None,
    force: Annotated[bool, typer.Option(help="promote even beyond the lag limit")] = False,
    url_file: Annotated[
        Path | None,
        typer.Option(
            help="rewrite this database URL file (AUTH_DATABASE__URL_FILE) to the new primary"
        ),
    ] = None,
) -> None:
    """Fence the primary (when reachable), promote the standby, repoint, verify a write."""
    if to != "standby":
        raise fail("--to: only the configured standby (dr.standby_url) can be promoted")
    settings = loaded_settings(ctx).settings
    service = _service(settings)
    repoint = _repoint_file(url_file)

    async def fail_over() -> None:
        timer = await service.failover(max_lag_bytes=max_lag_bytes, force=force, repoint=repoint)
        _print_steps("failover done", timer)
        await _audit(settings, service.standby.sqlalchemy_url(), events.DR_FAILOVER, timer)
        out.print(
            "the standby is the primary now; services read the new URL on restart "
            "(Kubernetes: point the database Service at it)",
            soft_wrap=True,
            markup=False,
        )

    run_async(fail_over, errors=DR_ERRORS)()


@app.command("failback")
def failback(
    ctx: typer.Context,
    old_primary_data: Annotated[Path, typer.Option(help="data directory of the old primary")],
    standby_data: Annotated[Path, typer.Option(help="data directory of the promoted standby")],
    url_file: Annotated[Path | None, typer.Option(help="database URL file to point back")] = None,
) -> None:
    """Rebuild the old primary as a standby (pg_rewind, else a base backup), catch up, then
    switch over with zero data loss and rebuild the standby: the original roles again.
    Runs where both data directories are (each step runs as the postgres user)."""
    settings = loaded_settings(ctx).settings
    service = _service(settings)
    bin_dir = settings.backup.pg_bin_dir
    original = pgtools.Cluster(
        old_primary_data.parent, service.primary.port, bin_dir, data=old_primary_data
    )
    current = pgtools.Cluster(standby_data.parent, service.standby.port, bin_dir, data=standby_data)
    repoint = _repoint_file(url_file)

    async def fail_back() -> None:
        timer = await service.failback(original, current, repoint=repoint)
        _print_steps("failback done", timer)
        await _audit(settings, service.primary.sqlalchemy_url(), events.DR_FAILBACK, timer)

    run_async(fail_back, errors=DR_ERRORS)()


def _auto_store(settings: Settings) -> Storage:
    dest = store_destination(settings.dr.auto, settings.backup.destinations)
    if dest is None:
        raise fail(
            "no shared store for observers: set dr.auto.store (or backup.destinations) to an "
            "object store outside region A"
        )
    try:
        return open_storage(dest)
    except BackupError as exc:
        raise fail(str(exc)) from None


@app.command("watch")
def watch(
    ctx: typer.Context,
    observer_id: Annotated[
        str | None, typer.Option(help="this observer's id (default dr.auto.observer_id, host name)")
    ] = None,
    url_file: Annotated[
        Path | None,
        typer.Option(help="on failover, rewrite this database URL file to the new primary"),
    ] = None,
    once: Annotated[bool, typer.Option(help="one probe and decision, then exit")] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="serve this observer's /metrics on server.management_host:PORT"),
    ] = None,
) -> None:
    """Observe the primary and the standby every dr.auto.probe_interval_seconds and publish
    what this observer sees to the shared store; with dr.auto.enabled, fail over once when a
    quorum of observers agrees the primary is gone (never back). Runs until SIGTERM/SIGINT."""
    settings = loaded_settings(ctx).settings
    service = _service(settings)
    store = _auto_store(settings)
    try:
        name = observer_id or settings.dr.auto.observer_id or default_observer_id()
    except DrError as exc:
        raise fail(str(exc)) from None
    if not OBSERVER_ID.fullmatch(name):
        raise fail(f"--observer-id {name!r}: use letters, digits, '.', '_' or '-' (64 at most)")

    def say(message: str) -> None:
        out.print(f"[{name}] {message}", soft_wrap=True, markup=False, highlight=False)

    async def report(record: FailoverRecord) -> None:
        await audit_failover(settings, service.standby.sqlalchemy_url(), record)

    watcher = Watcher(
        service,
        store,
        settings.dr,
        name,
        repoint=_repoint_file(url_file),
        on_failover=report,
        say=say,
    )
    if metrics_port is not None:
        _serve_metrics(settings.server.management_host, metrics_port)

    async def observe() -> None:
        if not settings.dr.auto.enabled:
            say("automatic failover is off (dr.auto.enabled): observing only")
        if once:
            await watcher.step()
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await watcher.run(stop)

    run_async(observe, errors=DR_ERRORS)()


def _serve_metrics(host: str, port: int) -> None:
    """This observer's /metrics, from a thread beside the watch loop."""
    from prometheus_client import start_http_server

    try:
        start_http_server(port, host)
    except OSError as exc:
        raise fail(f"--metrics-port {port}: {exc.strerror}; pick a free port") from None


@app.command("rearm")
def rearm(ctx: typer.Context) -> None:
    """Delete the automatic-failover lock (after a failback, or once an operator has dealt with
    a failed attempt) so that observers may fail over again."""
    settings = loaded_settings(ctx).settings
    store = _auto_store(settings)

    async def delete_lock() -> None:
        held = await rearm_lock(store)
        if held is None:
            out.print("no failover lock: automatic failover is armed", markup=False)
        else:
            out.print(
                f"removed the failover lock taken by {held.observer} at "
                f"{held.taken_at.isoformat()} (outcome {held.outcome}): automatic failover "
                "is armed again",
                soft_wrap=True,
                markup=False,
            )

    run_async(delete_lock, errors=DR_ERRORS)()
