"""`auth-service keys ...`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from auth_service.audit.context import RequestContext
from auth_service.cli.common import cli_services, loaded_settings, out, run_async
from auth_service.config.settings import SigningAlgorithm

app = typer.Typer(help="Signing keys.", no_args_is_help=True)


@app.command("list")
def list_keys(ctx: typer.Context) -> None:
    """Show signing keys and their state (next, active, retired)."""
    settings = loaded_settings(ctx).settings

    @run_async
    async def _run() -> None:
        async with cli_services(settings) as services:
            keys = await services.keys.list_keys()
        table = Table("kid", "alg", "status", "created", "activated", "published until")
        for k in keys:
            table.add_row(
                k.kid,
                k.algorithm,
                k.status,
                k.created_at,
                k.activated_at or "-",
                k.publish_until or "-",
            )
        out.print(table)
        if not keys:
            out.print(
                "no keys yet: they are created when the server first starts (or by `keys rotate`)"
            )

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
