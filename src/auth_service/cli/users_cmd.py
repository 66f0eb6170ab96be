"""`auth-service users ...`."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer
from rich.table import Table

from auth_service.accounts.errors import EmailTaken, InvalidEmail, WeakPassword
from auth_service.audit.context import RequestContext
from auth_service.cli.common import cli_services, fail, loaded_settings, out, run_async

app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)

CLI_CONTEXT = RequestContext(request_id="cli", user_agent="auth-service cli")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise fail("no terminal to ask for the password: pass --password-stdin")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat: ") != password:
            raise fail("the passwords differ")
    if not password:
        raise fail("empty password")
    return password


@app.command("create")
def create(
    ctx: typer.Context,
    email: Annotated[str, typer.Option(help="email address of the account")],
    admin: Annotated[bool, typer.Option(help="grant the admin role")] = False,
    password_stdin: Annotated[bool, typer.Option(help="read the password from stdin")] = False,
) -> None:
    """Create a verified account (the password policy applies)."""
    settings = loaded_settings(ctx).settings
    password = _read_password(password_stdin)

    @run_async
    async def _run() -> None:
        try:
            async with cli_services(settings) as services:
                identity = await services.accounts.registration.create_user(
                    email, password, admin=admin, ctx=CLI_CONTEXT
                )
        except EmailTaken:
            raise fail(f"an account with email {email!r} already exists") from None
        except InvalidEmail as exc:
            raise fail(f"invalid email: {exc.reason}") from None
        except WeakPassword as exc:
            raise fail("password refused: it " + "; it ".join(exc.reasons)) from None
        out.print(f"created {identity.email} ({identity.id}){' with role admin' if admin else ''}")

    _run()


@app.command("list")
def list_users(
    ctx: typer.Context,
    email: Annotated[str | None, typer.Option(help="filter by email substring")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
) -> None:
    """List accounts, oldest first."""
    settings = loaded_settings(ctx).settings

    @run_async
    async def _run() -> None:
        async with cli_services(settings) as services:
            users, total = await services.accounts.users.list_users(email=email, limit=limit)
        table = Table("id", "email", "status", "verified", "roles", "created")
        for u in users:
            table.add_row(
                str(u.id),
                u.email,
                u.status,
                "yes" if u.email_verified_at else "no",
                ",".join(u.roles),
                u.created_at.isoformat(timespec="seconds"),
            )
        out.print(table)
        out.print(f"{len(users)} of {total} users")

    _run()


@app.command("reset-mfa")
def reset_mfa(
    ctx: typer.Context,
    email: Annotated[str, typer.Option(help="email address of the account")],
) -> None:
    """Remove every second factor and passkey of an account (audited; the user is mailed)."""
    settings = loaded_settings(ctx).settings

    @run_async
    async def _run() -> None:
        async with cli_services(settings) as services:
            users, _ = await services.accounts.users.list_users(email=email, limit=200)
            found = [u for u in users if u.email == email.strip().lower()]
            if not found:
                raise fail(f"no account with email {email!r}")
            services.mail.start()  # the user's notice; closing the services drains it
            await services.mfa.reset(found[0], CLI_CONTEXT)
        out.print(f"reset the second factors of {found[0].email} ({found[0].id})")

    _run()
