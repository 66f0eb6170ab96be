"""The `auth-service` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from auth_service import __version__
from auth_service.cli import (
    backup_cmd,
    clients_cmd,
    config_cmd,
    connectors_cmd,
    db_cmd,
    dr_cmd,
    health_cmd,
    housekeeping_cmd,
    jobs_cmd,
    keys_cmd,
    realm_cmd,
    serve_cmd,
    users_cmd,
    users_import,
    webhooks_cmd,
)

app = typer.Typer(
    name="auth-service",
    help="A small, fast, self-hostable authentication service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML config file (default: config/$AUTH_ENV.yaml)",
            envvar="AUTH_CONFIG",
        ),
    ] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    ctx.obj = {"config": config}


app.command("serve")(serve_cmd.serve)
app.command("migrate")(db_cmd.migrate)
app.command("healthcheck")(health_cmd.healthcheck)
users_cmd.app.command("import")(users_import.import_users)
app.add_typer(users_cmd.app, name="users")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(clients_cmd.app, name="clients")
app.add_typer(connectors_cmd.app, name="connectors")
app.add_typer(config_cmd.app, name="config")
app.add_typer(backup_cmd.app, name="backup")
app.add_typer(dr_cmd.app, name="dr")
app.add_typer(jobs_cmd.app, name="jobs")
app.add_typer(webhooks_cmd.app, name="webhooks")
app.add_typer(housekeeping_cmd.app, name="housekeeping")
app.command("apply")(realm_cmd.apply)
app.command("export")(realm_cmd.export)


def main() -> None:
    app()
