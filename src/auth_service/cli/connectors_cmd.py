"""`auth-service connectors ...`: upstream identity providers people sign in with
(docs/federation.md). Every change is audited and applies at the next sign-in, no restart."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from auth_service.audit.context import RequestContext
from auth_service.cli.common import ErrorLines, cli_services, fail, loaded_settings, out, run_async
from auth_service.federation.connectors import Connector, ConnectorSpec, ConnectorType
from auth_service.federation.errors import ConnectorExists, ConnectorNotFound, InvalidConnector
from auth_service.federation.schemas import ConnectorOut

app = typer.Typer(help="Identity providers people sign in with.", no_args_is_help=True)

CLI_CONTEXT = RequestContext(request_id="cli", user_agent="auth-service cli")
ERRORS: ErrorLines = {
    InvalidConnector: lambda exc: f"refused: {exc}",
    ConnectorExists: lambda _exc: "a connector with that id exists already",
    ConnectorNotFound: lambda _exc: "no connector with that id",
}


class Format(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", help="table (default) or json")]
ScopeOption = Annotated[str | None, typer.Option("--scope", help='default "openid email profile"')]
SecretFile = Annotated[
    Path | None,
    typer.Option(
        "--client-secret-file",
        help="a file holding the client secret (stored encrypted under the master key)",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]


AuthorizationUrl = Annotated[
    str | None, typer.Option("--authorization-url", help="oauth2: the authorization endpoint")
]
TokenUrl = Annotated[str | None, typer.Option("--token-url", help="oauth2: the token endpoint")]
UserinfoUrl = Annotated[
    str | None,
    typer.Option("--userinfo-url", help="oauth2: the JSON about the user, read with the token"),
]
ClaimOption = Annotated[
    list[str] | None,
    typer.Option(
        "--claim",
        help="CLAIM=PATH: where subject, email, email_verified, name or groups is in the "
        "userinfo JSON, a dotted path or a JSON pointer (e.g. --claim subject=id); repeatable",
    ),
]
GroupRoleOption = Annotated[
    list[str] | None,
    typer.Option(
        "--group-role",
        help="GROUP=ROLE: members of the upstream group get the role (revoked when they "
        "are not); repeatable",
    ),
]


def _pairs(flag: str, given: list[str] | None) -> dict[str, str] | None:
    if given is None:
        return None
    found: dict[str, str] = {}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise fail(f"{flag} takes NAME=VALUE, not {item!r}")
        found[key.strip()] = value.strip()
    return found


def plain(connector: Connector, redirect_uri: str) -> dict[str, Any]:
    return ConnectorOut.of(connector, redirect_uri).model_dump(mode="json")


def _secret(path: Path | None) -> str | None:
    if path is None:
        return None
    text = path.read_text().strip()
    if not text:
        raise fail(f"{path} is empty")
    return text


def _print(data: dict[str, Any], fmt: Format) -> None:
    if fmt is Format.json:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table("field", "value", show_header=False)
    for key, value in data.items():
        table.add_row(key, str(value))
    out.print(table)


@app.command("create")
def create(
    ctx: typer.Context,
    connector_id: Annotated[str, typer.Option("--id", help="a slug: in the redirect URI")],
    name: Annotated[str, typer.Option("--name", help='shown as "Continue with <name>"')],
    connector_type: Annotated[ConnectorType, typer.Option("--type", help="the provider kind")],
    client_id: Annotated[str, typer.Option("--client-id")],
    issuer: Annotated[
        str | None, typer.Option("--issuer", help="required for oidc; presets have defaults")
    ] = None,
    client_secret_file: SecretFile = None,
    scope: ScopeOption = None,
    trust_email: Annotated[
        bool,
        typer.Option("--trust-email", help="link to an existing account by a verified email"),
    ] = False,
    signup: Annotated[
        bool, typer.Option("--signup/--no-signup", help="create accounts at first sign-in")
    ] = True,
    authorization_url: AuthorizationUrl = None,
    token_url: TokenUrl = None,
    userinfo_url: UserinfoUrl = None,
    claim: ClaimOption = None,
    store_tokens: Annotated[
        bool,
        typer.Option("--store-tokens", help="keep the upstream tokens, encrypted, per identity"),
    ] = False,
    group_role: GroupRoleOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Register an identity provider; prints the redirect URI to register there."""
    settings = loaded_settings(ctx).settings
    spec = ConnectorSpec(
        id=connector_id,
        name=name,
        type=connector_type,
        client_id=client_id,
        issuer=issuer,
        client_secret=_secret(client_secret_file),
        scope=scope,
        trust_email=trust_email,
        allow_signup=signup,
        authorization_url=authorization_url,
        token_url=token_url,
        userinfo_url=userinfo_url,
        claims=_pairs("--claim", claim),
        store_tokens=store_tokens,
        group_roles=_pairs("--group-role", group_role),
    )

    async def _run() -> None:
        async with cli_services(settings) as services:
            connector = await services.federation.connectors.create(spec, CLI_CONTEXT)
            uri = services.federation.redirect_uri(connector.id)
        _print(plain(connector, uri), fmt)

    run_async(_run, errors=ERRORS)()


@app.command("list")
def list_connectors(ctx: typer.Context, fmt: FormatOption = Format.table) -> None:
    """Every connector, oldest first."""
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            found = await services.federation.connectors.list()
            rows = [plain(c, services.federation.redirect_uri(c.id)) for c in found]
        if fmt is Format.json:
            typer.echo(json.dumps(rows, indent=2))
            return
        table = Table("id", "name", "type", "issuer", "enabled")
        for row in rows:
            enabled = "yes" if row["enabled"] else "no"
            table.add_row(row["id"], row["name"], row["type"], row["issuer"], enabled)
        out.print(table)

    run_async(_run, errors=ERRORS)()


@app.command("show")
def show(ctx: typer.Context, connector_id: str, fmt: FormatOption = Format.table) -> None:
    """One connector's settings (never its secret)."""
    _change(ctx, connector_id, fmt)


@app.command("update")
def update(
    ctx: typer.Context,
    connector_id: str,
    name: Annotated[str | None, typer.Option("--name")] = None,
    issuer: Annotated[str | None, typer.Option("--issuer")] = None,
    client_id: Annotated[str | None, typer.Option("--client-id")] = None,
    client_secret_file: SecretFile = None,
    scope: ScopeOption = None,
    trust_email: Annotated[bool | None, typer.Option("--trust-email/--no-trust-email")] = None,
    signup: Annotated[bool | None, typer.Option("--signup/--no-signup")] = None,
    authorization_url: AuthorizationUrl = None,
    token_url: TokenUrl = None,
    userinfo_url: UserinfoUrl = None,
    claim: ClaimOption = None,
    store_tokens: Annotated[
        bool | None,
        typer.Option("--store-tokens/--no-store-tokens", help="off: kept tokens are deleted"),
    ] = None,
    group_role: GroupRoleOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Change what is given (--claim and --group-role replace the whole mapping)."""
    changes = {
        "name": name,
        "issuer": issuer,
        "client_id": client_id,
        "scope": scope,
        "trust_email": trust_email,
        "allow_signup": signup,
        "authorization_url": authorization_url,
        "token_url": token_url,
        "userinfo_url": userinfo_url,
        "claims": _pairs("--claim", claim),
        "store_tokens": store_tokens,
        "group_roles": _pairs("--group-role", group_role),
    }
    _change(ctx, connector_id, fmt, secret=_secret(client_secret_file), **changes)


@app.command("disable")
def disable(ctx: typer.Context, connector_id: str, fmt: FormatOption = Format.table) -> None:
    """Hide its button and refuse its sign-ins; links stay."""
    _change(ctx, connector_id, fmt, enabled=False)


@app.command("enable")
def enable(ctx: typer.Context, connector_id: str, fmt: FormatOption = Format.table) -> None:
    """Show its button again."""
    _change(ctx, connector_id, fmt, enabled=True)


def _change(
    ctx: typer.Context,
    connector_id: str,
    fmt: Format,
    *,
    secret: str | None = None,
    **changes: Any,
) -> None:
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            store = services.federation.connectors
            if secret is None and all(v is None for v in changes.values()):
                connector = await store.get(connector_id, enabled_only=False)
            else:
                connector = await store.update(
                    connector_id, CLI_CONTEXT, client_secret=secret, **changes
                )
            uri = services.federation.redirect_uri(connector.id)
        _print(plain(connector, uri), fmt)

    run_async(_run, errors=ERRORS)()


@app.command("delete")
def delete(ctx: typer.Context, connector_id: str) -> None:
    """Remove a connector and every identity linked through it."""
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            await services.federation.connectors.delete(connector_id, CLI_CONTEXT)
        out.print(f"deleted {connector_id}")

    run_async(_run, errors=ERRORS)()
