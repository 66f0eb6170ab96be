"""`auth-service users ...`."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from auth_service.accounts.errors import (
    EmailTaken,
    FeatureDisabled,
    InvalidEmail,
    LastAdmin,
    UserDisabled,
    UserNotFound,
    WeakPassword,
)
from auth_service.accounts.identity import BuiltinRole, Identity, UserStatus
from auth_service.accounts.schemas import AdminUserOut
from auth_service.audit.context import RequestContext
from auth_service.cli.common import (
    ErrorLines,
    FormatOption,
    ListFormat,
    cli_services,
    fail,
    list_format,
    loaded_settings,
    note,
    out,
    print_records,
    run_async,
)
from auth_service.jobs.worker import JobWorker
from auth_service.observability import metrics

if TYPE_CHECKING:
    from auth_service.services import Services

app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)

USER_COLUMNS = ("id", "email", "status", "email_verified", "roles", "created_at")

CLI_CONTEXT = RequestContext(request_id="cli", user_agent="auth-service cli")

EmailOption = Annotated[str, typer.Option(help="email address of the account")]

# How long `users reset` waits for its mail to leave (retries included) before it exits.
MAIL_WAIT_SECONDS = 60.0


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
    format: FormatOption = "table",
) -> None:
    """List accounts, oldest first (JSON: the items of GET /v1/admin/users)."""
    fmt = list_format(format)
    settings = loaded_settings(ctx).settings

    @run_async
    async def _run() -> None:
        async with cli_services(settings) as services:
            users, total = await services.accounts.users.list_users(email=email, limit=limit)
        records = [AdminUserOut.of(u).model_dump(mode="json") for u in users]
        print_records(records, USER_COLUMNS, fmt)
        if fmt is ListFormat.table:
            note(f"{len(users)} of {total} users")

    _run()


def _user_errors(email: str) -> ErrorLines:
    """The one-line errors of the commands that change an existing account, with what to do."""
    return {
        UserNotFound: lambda _: (
            f"no account with email {email!r}; `auth-service users list --email PART` "
            "shows which exist"
        ),
        LastAdmin: lambda _: (
            f"{email} is the last active administrator; promote another account first "
            "(`auth-service users promote --email OTHER`)"
        ),
        UserDisabled: lambda _: (
            f"{email} is disabled and gets no reset link; enable it first "
            f"(`auth-service users enable --email {email}`)"
        ),
        FeatureDisabled: lambda _: (
            "password reset is switched off (features.password_reset): switch it on, or set "
            "the password with --password-stdin"
        ),
        WeakPassword: lambda exc: "password refused: it " + "; it ".join(exc.reasons),
    }


@dataclass(frozen=True)
class _Change:
    """One of the changes of `disable`, `enable`, `promote`, `demote`."""

    done: Callable[[Identity], bool]  # the account is already in the wanted state
    changes: Callable[[Identity], dict[str, Any]]  # admin_update's arguments
    changed: str  # the message afterwards ({email} is filled in)
    unchanged: str  # the message when there was nothing to do
    help: str  # the command's help


def _roles(user: Identity, *, admin: bool) -> dict[str, Any]:
    others = [r for r in user.roles if r != BuiltinRole.admin]
    return {"roles": [*others, BuiltinRole.admin.value] if admin else others}


CHANGES = {
    "disable": _Change(
        lambda u: u.status is UserStatus.disabled,
        lambda _: {"status": UserStatus.disabled},
        "disabled {email}; every session of it has ended",
        "{email} is already disabled",
        "Disable an account: it can no longer sign in and every session of it ends now.",
    ),
    "enable": _Change(
        lambda u: u.status is UserStatus.active,
        lambda _: {"status": UserStatus.active},
        "enabled {email}",
        "{email} is already active",
        "Enable a disabled account again.",
    ),
    "promote": _Change(
        lambda u: BuiltinRole.admin in u.roles,
        lambda u: _roles(u, admin=True),
        "{email} is now an administrator",
        "{email} is already an administrator",
        "Grant the admin role.",
    ),
    "demote": _Change(
        lambda u: BuiltinRole.admin not in u.roles,
        lambda u: _roles(u, admin=False),
        "{email} is no longer an administrator",
        "{email} is not an administrator",
        "Take the admin role away (never from the last active administrator).",
    ),
}


def _change(ctx: typer.Context, email: str, name: str) -> None:
    change = CHANGES[name]
    settings = loaded_settings(ctx).settings

    async def apply() -> None:
        async with cli_services(settings) as services:
            users = services.accounts.users
            user = await users.find(email)
            if change.done(user):
                out.print(change.unchanged.format(email=user.email), markup=False)
                return
            # admin_update audits the change (admin.user_updated) and keeps the last admin.
            await users.admin_update(user.id, CLI_CONTEXT, **change.changes(user))
        out.print(change.changed.format(email=user.email), markup=False)

    run_async(apply, errors=_user_errors(email))()


def _change_command(name: str, change: _Change) -> None:
    def command(ctx: typer.Context, email: EmailOption) -> None:
        _change(ctx, email, name)

    command.__doc__ = change.help
    app.command(name)(command)


for _name, _change_spec in CHANGES.items():
    _change_command(_name, _change_spec)


@app.command("reset")
def reset(
    ctx: typer.Context,
    email: EmailOption,
    password_stdin: Annotated[
        bool,
        typer.Option(help="set the new password read from stdin instead of mailing a link"),
    ] = False,
) -> None:
    """Mail a reset link (the forgot-password mail) or, with --password-stdin, set the password."""
    # Either way the account's sessions end once the new password is set, and the sign-in
    # lockout of its address is cleared (as after any password reset).
    settings = loaded_settings(ctx).settings
    password = _read_password(True) if password_stdin else None

    async def send() -> None:
        async with cli_services(settings) as services:
            user = await services.accounts.users.find(email)
            if password is not None:
                await services.accounts.recovery.set_password(user, password, CLI_CONTEXT)
                out.print(f"password of {user.email} set; every session of it ended", markup=False)
                return
            await _mail_reset_link(services, user)

    run_async(send, errors=_user_errors(email))()


async def _deliver_mail(services: Services) -> bool:
    """Deliver the mail this command queued, from here: a job worker runs until no mail is
    waiting, so the command can say what happened without a server running. False when a
    mail was given up. Raises typer.Exit (with what to do) when it takes too long."""
    failed = _mail_failures()
    worker = JobWorker(services.jobs, services.job_upkeep, concurrency=1)
    worker.start()
    try:
        await services.mail.join(within=MAIL_WAIT_SECONDS)
    except TimeoutError:
        raise fail(
            f"the mail is still not sent after {MAIL_WAIT_SECONDS:.0f}s; check the mail "
            "settings (mail.*) and the relay; a running server delivers it once it can"
        ) from None
    finally:
        await worker.stop(drain_seconds=5)
    return _mail_failures() == failed


async def _mail_reset_link(services: Services, user: Identity) -> None:
    """Queue the link and deliver it (``_deliver_mail``)."""
    await services.accounts.recovery.send_reset_link(user.id, CLI_CONTEXT)
    if not await _deliver_mail(services):
        raise fail(
            f"the reset mail to {user.email} could not be sent (see the log above); check the "
            "mail settings (mail.*) and the relay, or set a password with --password-stdin"
        )
    minutes = services.settings.tokens.password_reset_ttl_seconds // 60
    where = (
        f" (development outbox: {services.settings.outbox_dir})"
        if services.settings.mail.backend == "outbox"
        else ""
    )
    out.print(
        f"reset link mailed to {user.email}; it works once, for {minutes} minutes{where}",
        markup=False,
    )


def _mail_failures() -> float:
    """Messages this process's mail queue gave up on so far."""
    return sum(
        sample.value
        for family in metrics.MAIL_FAILED.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    )


@app.command("reset-mfa")
def reset_mfa(
    ctx: typer.Context,
    email: Annotated[str, typer.Option(help="email address of the account")],
) -> None:
    """Remove every second factor and passkey of an account (audited; the user is mailed)."""
    settings = loaded_settings(ctx).settings

    async def _run() -> None:
        async with cli_services(settings) as services:
            user = await services.accounts.users.find(email)
            await services.mfa.reset(user, CLI_CONTEXT)
            await _deliver_mail(services)
        out.print(f"reset the second factors of {user.email} ({user.id})", markup=False)

    run_async(_run, errors=_user_errors(email))()
