"""`auth-service keys ...`."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from auth_service.audit.context import RequestContext
from auth_service.cli.common import (
    FormatOption,
    ListFormat,
    cli_services,
    list_format,
    loaded_settings,
    note,
    out,
    print_records,
    run_async,
)
from auth_service.config.settings import SigningAlgorithm

app = typer.Typer(help="Signing keys.", no_args_is_help=True)

KEY_COLUMNS = ("kid", "algorithm", "status", "created_at", "activated_at", "publish_until")


@app.command("list")
def list_keys(ctx: typer.Context, format: FormatOption = "table") -> None:
    """Show signing keys and their state (next, active, retired), oldest first."""
    fmt = list_format(format)
    settings = loaded_settings(ctx).settings

    @run_async
    async def _run() -> None:
        async with cli_services(settings) as services:
            keys = await services.keys.list_keys()
        print_records([dataclasses.asdict(k) for k in keys], KEY_COLUMNS, fmt)
        if not keys and fmt is ListFormat.table:
            note("no keys yet: they are created when the server first starts (or by `keys rotate`)")

    _run()


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    algorithm: Annotated[
        SigningAlgorithm | None,
        typer.Option("--algorithm", help="rotate only this algorithm's keys (default: all)"),
    ] = None,
) -> None:
    """Promote the published next key to signing and publish a new next key (per algorithm:
    access tokens sign with tokens.algorithm, ID tokens with their client's)."""
    settings = loaded_settings(ctx).settings

    @run_async
    async def _run() -> None:
        async with cli_services(settings) as services:
            await services.keys.ensure_keys()
            kid = await services.keys.rotate(RequestContext(request_id="cli"), algorithm)
        out.print(f"active signing key is now {kid}")

    _run()
