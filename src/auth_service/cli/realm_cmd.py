"""`auth-service apply` and `auth-service export`: configuration as code
(docs/operations/config-as-code.md, ADR 0930)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from sqlalchemy.exc import IntegrityError

from auth_service.accounts.service import UnknownTenant
from auth_service.cli.common import (
    EXIT_CONFIG,
    ErrorLines,
    cli_services,
    fail,
    loaded_settings,
    run_async,
)
from auth_service.realm.model import SCHEMA_PATH, RealmError, load
from auth_service.realm.plan import Plan, StepFailed

ERRORS: ErrorLines = {UnknownTenant: str}

EXPORT_HEADER = (
    "# auth-service export: the default tenant as a realm file (" + SCHEMA_PATH + ").\n"
    "# Secrets are {keep: true}: apply keeps the current ones; replace one with\n"
    "# {file: PATH} or {env: NAME} to set it.\n"
)


def _show(plan: Plan) -> None:
    typer.echo(plan.render())


def apply(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Option("--file", "-f", help="the realm file (YAML; schemas/realm.schema.json)")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the plan and write nothing")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="also delete what a section of the file leaves out (never a section left out)",
        ),
    ] = False,
) -> None:
    """Make the default tenant's roles, clients, connectors, webhooks and bootstrap admins
    match the file, in one transaction; prints the plan first."""
    try:
        realm = load(file)
    except RealmError as exc:
        raise fail(f"{file}: " + f"\n{file}: ".join(exc.problems), EXIT_CONFIG) from None
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        from auth_service.realm.run import apply as apply_realm

        async with cli_services(settings) as services:
            await services.accounts.start()
            try:
                plan = await apply_realm(
                    services,
                    realm,
                    base=file.resolve().parent,
                    dry_run=dry_run,
                    prune=prune,
                    show=_show,
                    source=file.name,
                )
            except RealmError as exc:
                raise fail("\n".join(exc.problems), EXIT_CONFIG) from None
            except StepFailed as exc:
                raise fail(f"{exc}; nothing was applied") from None
            except IntegrityError:
                # Another writer (a second apply, the admin API) created the same object
                # between the plan and the write.
                raise fail(
                    "the database changed while applying (another apply or an admin change "
                    "created the same object); nothing was applied: run apply again"
                ) from None
        if dry_run:
            typer.echo("Dry run: nothing was written.")
        elif plan.writes:
            typer.echo("Applied.")

    run_async(_run, errors=ERRORS)()


def export(ctx: typer.Context) -> None:
    """Write the default tenant's roles, clients, connectors, webhooks and admins to stdout
    as a realm file (secrets as {keep: true}: their values never leave the database)."""
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        from auth_service.realm.run import export as export_realm

        async with cli_services(settings) as services:
            await services.accounts.start()
            doc = await export_realm(services)
        typer.echo(EXPORT_HEADER, nl=False)
        typer.echo(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), nl=False)

    run_async(_run, errors=ERRORS)()
