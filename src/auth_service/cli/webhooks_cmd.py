"""`auth-service webhooks ...`: subscriptions to audit events, signed deliveries, the
delivery log (docs/operations/webhooks.md). Every change is audited."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import typer

from auth_service.cli.common import (
    ErrorLines,
    FormatOption,
    ListFormat,
    cli_services,
    list_format,
    loaded_settings,
    note,
    print_records,
    run_async,
)
from auth_service.cli.users_cmd import CLI_CONTEXT
from auth_service.webhooks.errors import InvalidWebhook, WebhookNotFound
from auth_service.webhooks.schemas import DeliveryOut, WebhookOut
from auth_service.webhooks.service import Subscription, WebhookSpec

app = typer.Typer(
    help="Webhooks: audit events signed and delivered to your endpoints.", no_args_is_help=True
)

ERRORS: ErrorLines = {
    InvalidWebhook: lambda exc: f"refused: {exc}",
    WebhookNotFound: lambda _exc: "no webhook with that id (webhooks list)",
}
COLUMNS = ("id", "url", "event_types", "enabled", "description")
DELIVERY_COLUMNS = (
    "created_at",
    "event_type",
    "status",
    "attempts",
    "response_code",
    "last_error",
    "webhook_id",
)
WebhookId = Annotated[uuid.UUID, typer.Argument(help="the webhook's id (webhooks list)")]


def _record(sub: Subscription, secret: str | None = None) -> dict[str, Any]:
    data = WebhookOut.of(sub).model_dump(mode="json")
    if secret is not None:
        data["secret"] = secret
    return data


def _print_one(data: dict[str, Any], fmt: ListFormat) -> None:
    if fmt is ListFormat.json:
        typer.echo(json.dumps(data, indent=2))
        return
    for name, value in data.items():
        shown = ",".join(value) if isinstance(value, list) else value
        typer.echo(f"{name:>26}: {'-' if shown is None else shown}")
    if "secret" in data:
        note("the secret is shown only now: give it to the receiver and store it safely")


@app.command("create")
def create(
    ctx: typer.Context,
    url: Annotated[str, typer.Option("--url", help="https URL the events are POSTed to")],
    event: Annotated[
        list[str], typer.Option("--event", help="an audit event type, e.g. user.registered")
    ],
    description: Annotated[str, typer.Option(help="what it is for")] = "",
    disabled: Annotated[bool, typer.Option("--disabled", help="create it disabled")] = False,
    format: FormatOption = "table",
) -> None:
    """Subscribe a URL to event types; prints the signing secret, once."""
    fmt = list_format(format)
    settings = loaded_settings(ctx).settings
    spec = WebhookSpec(url, event, description, not disabled)

    async def _run() -> None:
        async with cli_services(settings) as services:
            sub, secret = await services.webhooks.create(spec, CLI_CONTEXT)
        _print_one(_record(sub, secret), fmt)

    run_async(_run, errors=ERRORS)()


@app.command("list")
def list_webhooks(ctx: typer.Context, format: FormatOption = "table") -> None:
    """Every subscription, oldest first (JSON: the items of GET /v1/admin/webhooks)."""
    fmt = list_format(format)
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            subs = await services.webhooks.subscriptions()
        print_records([_record(s) for s in subs], COLUMNS, fmt)
        if fmt is ListFormat.table:
            note(f"{len(subs)} webhooks")

    run_async(_run, errors=ERRORS)()


@app.command("show")
def show(ctx: typer.Context, webhook_id: WebhookId, format: FormatOption = "table") -> None:
    """One subscription (never its secret)."""
    fmt = list_format(format)
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            sub = await services.webhooks.get(webhook_id)
        _print_one(_record(sub), fmt)

    run_async(_run, errors=ERRORS)()


@app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    webhook_id: WebhookId,
    status: Annotated[
        str | None, typer.Option(help="delivered, retrying, dead (the dead letters) or skipped")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    format: FormatOption = "table",
) -> None:
    """The delivery log of a subscription, newest first."""
    fmt = list_format(format)
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            items, total = await services.webhooks.deliveries(
                webhook_id, status=status, limit=limit
            )
        records = [DeliveryOut.of(d).model_dump(mode="json") for d in items]
        print_records(records, DELIVERY_COLUMNS, fmt)
        if fmt is ListFormat.table:
            note(f"{len(items)} of {total} deliveries")

    run_async(_run, errors=ERRORS)()


@app.command("rotate-secret")
def rotate_secret(
    ctx: typer.Context, webhook_id: WebhookId, format: FormatOption = "table"
) -> None:
    """A new signing secret (printed once); the previous one also signs during
    webhooks.secret_overlap_hours, so the receiver can switch without losing a message."""
    fmt = list_format(format)
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            sub, secret = await services.webhooks.rotate_secret(webhook_id, CLI_CONTEXT)
        _print_one(_record(sub, secret), fmt)

    run_async(_run, errors=ERRORS)()


@app.command("delete")
def delete(
    ctx: typer.Context,
    webhook_id: WebhookId,
    confirm: Annotated[bool, typer.Option("--confirm", help="delete (default: dry run)")] = False,
) -> None:
    """Delete a subscription and its delivery log; its pending deliveries go dead."""
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            if not confirm:
                sub = await services.webhooks.get(webhook_id)
                typer.echo(f"would delete webhook {sub.id} ({sub.url})")
                note("dry run: add --confirm to delete")
                return
            sub = await services.webhooks.delete(webhook_id, CLI_CONTEXT)
        typer.echo(f"webhook {sub.id} ({sub.url}) is deleted")

    run_async(_run, errors=ERRORS)()
