"""`auth-service clients ...`: OAuth clients (docs/oidc.md). Every change is audited."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from auth_service.audit.context import RequestContext
from auth_service.cli.common import ErrorLines, cli_services, loaded_settings, out, run_async
from auth_service.oauth.client_metadata import ClientSpec, ClientType
from auth_service.oauth.clients import Client
from auth_service.oauth.errors import ClientNotFound, InvalidClientMetadata
from auth_service.oauth.schemas import ClientOut

app = typer.Typer(help="OAuth 2.1 / OpenID Connect clients.", no_args_is_help=True)

CLI_CONTEXT = RequestContext(request_id="cli", user_agent="auth-service cli")
ERRORS: ErrorLines = {
    InvalidClientMetadata: lambda exc: f"refused: {exc}",
    ClientNotFound: lambda _exc: "no client with that client_id",
}


class Format(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", help="table (default) or json")]
RedirectUris = Annotated[
    list[str] | None,
    typer.Option("--redirect-uri", help="a redirect URI (repeatable; exact match)"),
]
LogoutUris = Annotated[
    list[str] | None,
    typer.Option("--post-logout-redirect-uri", help="where RP-initiated logout may return"),
]
GrantTypes = Annotated[
    list[str] | None,
    typer.Option(
        "--grant-type",
        help="authorization_code, refresh_token, client_credentials, or a standard grant URN "
        "such as urn:ietf:params:oauth:grant-type:token-exchange (repeatable)",
    ),
]
Resources = Annotated[
    list[str] | None,
    typer.Option("--resource", help="a resource (RFC 8707 audience) it may ask for (repeatable)"),
]
ScopeOption = Annotated[str | None, typer.Option("--scope", help='e.g. "openid profile email"')]
AuthMethod = Annotated[
    str | None,
    typer.Option(
        "--auth-method",
        help="client_secret_basic (confidential default), client_secret_post, none (public)",
    ),
]
IdTokenAlg = Annotated[
    str | None, typer.Option("--id-token-alg", help="RS256 (default), ES256 or EdDSA")
]

JwksUri = Annotated[
    str | None,
    typer.Option("--jwks-uri", help="where its public keys are (private_key_jwt; https)"),
]
JwksOption = Annotated[
    str | None,
    typer.Option(
        "--jwks", help="its public keys (private_key_jwt): a JWK Set as JSON, or a file of one"
    ),
]
BackchannelUri = Annotated[
    str | None,
    typer.Option(
        "--backchannel-logout-uri",
        help='where logout tokens are POSTed (OIDC Back-Channel Logout; "" removes it)',
    ),
]
ExchangeAudiences = Annotated[
    list[str] | None,
    typer.Option(
        "--token-exchange-audience",
        help="an audience it may exchange tokens for (RFC 8693; repeatable)",
    ),
]

SubjectType = Annotated[
    str | None,
    typer.Option(
        "--subject-type",
        help="public (default: the user's id) or pairwise (one sub per redirect URI host)",
    ),
]


def _jwks(value: str | None) -> dict[str, Any] | None:
    """A JWK Set given inline (JSON) or as the path of a JSON file."""
    if value is None:
        return None
    text = value
    if not value.lstrip().startswith("{"):
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {value}: {exc.strerror}") from None
    try:
        doc = json.loads(text)
    except ValueError:
        raise typer.BadParameter("--jwks must be a JSON JWK Set") from None
    if not isinstance(doc, dict):
        raise typer.BadParameter("--jwks must be a JSON object")
    return doc


def _plain(client: Client) -> dict[str, Any]:
    return ClientOut.of(client).model_dump(mode="json")


def _print(client: Client, fmt: Format, secret: str | None = None) -> None:
    data = _plain(client)
    if secret is not None:
        data["client_secret"] = secret
    if fmt is Format.json:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table("field", "value", show_header=False)
    for key, value in data.items():
        shown = " ".join(value) if isinstance(value, list) else str(value)
        table.add_row(key, shown)
    out.print(table)
    if secret is not None:
        out.print("[bold]client_secret is shown only now: store it safely.[/]")


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="shown on the consent page")],
    client_type: Annotated[
        ClientType, typer.Option("--type", help="confidential (a server) or public (an app)")
    ],
    redirect_uri: RedirectUris = None,
    post_logout_redirect_uri: LogoutUris = None,
    grant_type: GrantTypes = None,
    scope: ScopeOption = None,
    resource: Resources = None,
    first_party: Annotated[bool, typer.Option("--first-party", help="never ask consent")] = False,
    auth_method: AuthMethod = None,
    id_token_alg: IdTokenAlg = None,
    require_par: Annotated[
        bool,
        typer.Option("--require-par", help="authorization requests only by PAR (RFC 9126)"),
    ] = False,
    jwks_uri: JwksUri = None,
    jwks: JwksOption = None,
    subject_type: SubjectType = None,
    backchannel_logout_uri: BackchannelUri = None,
    backchannel_session_required: Annotated[
        bool,
        typer.Option("--backchannel-logout-session-required", help="logout tokens must carry sid"),
    ] = False,
    token_exchange_audience: ExchangeAudiences = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Register a client; prints its client_id and, once, its client_secret."""
    settings = loaded_settings(ctx).settings
    spec = ClientSpec(
        name=name,
        client_type=client_type,
        redirect_uris=tuple(redirect_uri or ()),
        post_logout_redirect_uris=tuple(post_logout_redirect_uri or ()),
        grant_types=tuple(grant_type or ("authorization_code",)),
        scope=scope if scope is not None else "openid",
        resources=tuple(resource or ()),
        first_party=first_party,
        token_endpoint_auth_method=auth_method,
        id_token_signed_response_alg=id_token_alg or "RS256",
        require_pushed_authorization_requests=require_par,
        jwks=_jwks(jwks),
        jwks_uri=jwks_uri,
        subject_type=subject_type or "public",
        backchannel_logout_uri=backchannel_logout_uri,
        backchannel_logout_session_required=backchannel_session_required,
        token_exchange_audiences=tuple(token_exchange_audience or ()),
    )

    async def _run() -> None:
        async with cli_services(settings) as services:
            client, secret = await services.oauth.clients.create(spec, CLI_CONTEXT)
        _print(client, fmt, secret)

    run_async(_run, errors=ERRORS)()


@app.command("list")
def list_clients(ctx: typer.Context, fmt: FormatOption = Format.table) -> None:
    """Every client, oldest first."""
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            clients = await services.oauth.clients.list()
        if fmt is Format.json:
            typer.echo(json.dumps([_plain(c) for c in clients], indent=2))
            return
        table = Table("name", "type", "grant types", "first party")
        table.add_column("client_id", no_wrap=True)
        for c in clients:
            table.add_row(
                c.name,
                c.client_type.value,
                " ".join(c.grant_types),
                "yes" if c.first_party else "no",
                c.client_id,
            )
        out.print(table)

    run_async(_run, errors=ERRORS)()


@app.command("show")
def show(ctx: typer.Context, client_id: str, fmt: FormatOption = Format.table) -> None:
    """One client's registration."""
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            client = await services.oauth.clients.get(client_id)
        _print(client, fmt)

    run_async(_run, errors=ERRORS)()


@app.command("update")
def update(
    ctx: typer.Context,
    client_id: str,
    name: Annotated[str | None, typer.Option("--name")] = None,
    redirect_uri: RedirectUris = None,
    post_logout_redirect_uri: LogoutUris = None,
    grant_type: GrantTypes = None,
    scope: ScopeOption = None,
    resource: Resources = None,
    first_party: Annotated[bool | None, typer.Option("--first-party/--third-party")] = None,
    auth_method: AuthMethod = None,
    id_token_alg: IdTokenAlg = None,
    require_par: Annotated[
        bool | None,
        typer.Option("--require-par/--no-require-par", help="authorization requests only by PAR"),
    ] = None,
    jwks_uri: JwksUri = None,
    jwks: JwksOption = None,
    subject_type: SubjectType = None,
    backchannel_logout_uri: BackchannelUri = None,
    backchannel_session_required: Annotated[
        bool | None,
        typer.Option(
            "--backchannel-logout-session-required/--no-backchannel-logout-session-required",
            help="logout tokens must carry sid",
        ),
    ] = None,
    token_exchange_audience: ExchangeAudiences = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Change what is given; a repeatable option replaces the whole list."""
    settings = loaded_settings(ctx).settings
    given: dict[str, Any] = {
        "name": name,
        "redirect_uris": tuple(redirect_uri) if redirect_uri else None,
        "post_logout_redirect_uris": (
            tuple(post_logout_redirect_uri) if post_logout_redirect_uri else None
        ),
        "grant_types": tuple(grant_type) if grant_type else None,
        "scope": scope,
        "resources": tuple(resource) if resource else None,
        "first_party": first_party,
        "token_endpoint_auth_method": auth_method,
        "id_token_signed_response_alg": id_token_alg,
        "require_pushed_authorization_requests": require_par,
        "jwks": _jwks(jwks),
        "jwks_uri": jwks_uri,
        "subject_type": subject_type,
        "backchannel_logout_uri": backchannel_logout_uri,
        "backchannel_logout_session_required": backchannel_session_required,
        "token_exchange_audiences": (
            tuple(token_exchange_audience) if token_exchange_audience else None
        ),
    }
    changes = {k: v for k, v in given.items() if v is not None}

    async def _run() -> None:
        async with cli_services(settings) as services:
            client = await services.oauth.clients.update(client_id, CLI_CONTEXT, **changes)
        _print(client, fmt)

    run_async(_run, errors=ERRORS)()


@app.command("rotate-secret")
def rotate_secret(
    ctx: typer.Context,
    client_id: str,
    overlap_seconds: Annotated[
        int | None,
        typer.Option(
            "--overlap-seconds",
            min=0,
            help="how long the old secret keeps working (default: the setting)",
        ),
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """A new client secret (printed once); the old one works until the overlap ends."""
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            rotation = await services.oauth.clients.rotate_secret(
                client_id, CLI_CONTEXT, overlap_seconds=overlap_seconds
            )
        until = rotation.previous_expires_at.isoformat() if rotation.previous_expires_at else None
        data = {
            "client_id": client_id,
            "client_secret": rotation.secret,
            "previous_secret_expires_at": until,
        }
        if fmt is Format.json:
            typer.echo(json.dumps(data, indent=2))
            return
        out.print(f"client_secret: {rotation.secret}")
        out.print(f"the previous secret works until {until}")

    run_async(_run, errors=ERRORS)()


@app.command("delete")
def delete(ctx: typer.Context, client_id: str) -> None:
    """Remove a client; every grant it holds ends."""
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            await services.oauth.delete_client(client_id, CLI_CONTEXT)
        out.print(f"deleted {client_id}")

    run_async(_run, errors=ERRORS)()
