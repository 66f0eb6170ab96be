"""`auth-service dr ...`: replication status, failover and failback."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import asyncpg  # type: ignore[import-untyped]
import typer
from rich.table import Table

from auth_service.backup import pgtools
from auth_service.backup.errors import BackupError
from auth_service.cli.common import fail, loaded_settings, out, run_async
from auth_service.config.settings import Settings
from auth_service.dr.service import DrError, DrService, StepTimer

app = typer.Typer(help="Disaster recovery: replication status, failover, failback.")


def _service(settings: Settings) -> DrService:
    if settings.dr.standby_url is None:
        raise fail("dr.standby_url is not set (AUTH_DR__STANDBY_URL_FILE): no standby to manage")
    if not settings.database_url.startswith("postgresql"):
        raise fail("disaster recovery needs PostgreSQL (database.url)")
    return DrService(
        pgtools.ConnInfo.from_url(settings.database_url),
        pgtools.ConnInfo.from_url(settings.dr.standby_url.get_secret_value()),
        settings.dr,
    )


def _run(fn: Any) -> None:
    try:
        run_async(fn)()
    except (DrError, BackupError) as exc:
        raise fail(str(exc)) from None
    except asyncpg.PostgresError as exc:
        raise fail(f"PostgreSQL refused a DR step ({exc}); check `dr status`") from None


def _print_steps(title: str, timer: StepTimer) -> None:
    for name, seconds in timer.steps:
        out.print(f"  {name}: {seconds:.3f}s", soft_wrap=True, markup=False)
    out.print(f"{title} in {timer.total:.2f}s", soft_wrap=True, markup=False)


def _write_url(path: Path, url: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(url + "\n")
    tmp.chmod(0o600)
    os.replace(tmp, path)


@app.command("status")
def status(
    ctx: typer.Context,
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Roles, LSNs, lag (bytes, seconds), sync state, timeline and the newest backup."""
    settings = loaded_settings(ctx).settings
    service = _service(settings)

    async def go() -> None:
        data = await service.status()
        newest = None
        if settings.backup.key is not None:
            from auth_service.backup.catalog import Catalog

            try:
                catalog = Catalog(settings.backup, settings.data_dir)
                per_destination = {}
                for storage in catalog.storages:
                    full = [m for m in await catalog.manifests(storage) if m.kind == "full"]
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

    _run(go)


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

    async def repoint(url: str) -> None:
        if url_file is not None:
            _write_url(url_file, url)

    async def go() -> None:
        timer = await service.failover(max_lag_bytes=max_lag_bytes, force=force, repoint=repoint)
        _print_steps("failover done", timer)
        out.print(
            "the standby is the primary now; services read the new URL on restart "
            "(Kubernetes: point the database Service at it)",
            soft_wrap=True,
            markup=False,
        )

    _run(go)


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

    async def repoint(url: str) -> None:
        if url_file is not None:
            _write_url(url_file, url)

    async def go() -> None:
        timer = await service.failback(original, current, repoint=repoint)
        _print_steps("failback done", timer)

    _run(go)
