"""Shared CLI plumbing: settings loading, one-line errors with non-zero exit codes, and the
output of list commands."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from auth_service.config.loader import ConfigError, LoadedSettings, load_settings
from auth_service.config.settings import Settings

if TYPE_CHECKING:
    from auth_service.services import Services

P = ParamSpec("P")
T = TypeVar("T")

err = Console(stderr=True, highlight=False)
# soft_wrap: a long line (an email, an id) stays one line; rich would break it at 80 columns
# when stdout is a pipe.
out = Console(highlight=False, soft_wrap=True)

EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


def loaded_settings(
    ctx: typer.Context, overrides: Mapping[str, Any] | None = None
) -> LoadedSettings:
    """The settings of this command (``--config``, the environment, then ``overrides``), with
    logging configured from them."""
    config: Path | None = (ctx.obj or {}).get("config")
    try:
        loaded = load_settings(config, overrides=overrides)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None
    from auth_service.observability.logging import STDERR, configure_logging

    # Logs (audit lines included) go to stderr so stdout carries only the command's output.
    configure_logging(loaded.settings.logging, loaded.settings.env, stream=STDERR)
    return loaded


@contextlib.asynccontextmanager
async def cli_services(settings: Settings) -> AsyncIterator[Services]:
    """The service graph for one CLI command, on a migrated database, closed afterwards."""
    from auth_service.services import build_services

    services = build_services(settings)
    try:
        await services.check_schema()
        yield services
    finally:
        await services.close()


ErrorLines = Mapping[type[Exception], Callable[[Exception], str]]
"""A command's own expected errors: exception type -> its one error line (often ``str``)."""


def run_async(
    fn: Callable[P, Coroutine[Any, Any, T]], *, errors: ErrorLines | None = None
) -> Callable[P, T]:
    """Run a coroutine command, turning expected failures into one-line errors: the service
    graph's and the database's, then the command's own ``errors``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        from sqlalchemy.exc import DBAPIError, OperationalError

        from auth_service.db.errors import DatabaseUnavailable
        from auth_service.services import StartupError

        try:
            return asyncio.run(fn(*args, **kwargs))
        except StartupError as exc:
            raise fail(str(exc)) from None
        except (DatabaseUnavailable, OperationalError, DBAPIError, OSError) as exc:
            # The driver's own message names the host and what failed; DatabaseUnavailable
            # carries it as its cause.
            cause = exc.__cause__ if isinstance(exc, DatabaseUnavailable) else exc
            reason = str(getattr(cause, "orig", None) or cause or exc).splitlines()[0][:300]
            if "CERTIFICATE_VERIFY_FAILED" in reason:
                raise fail(
                    f"the database's TLS certificate was refused ({reason}); check "
                    "database.ssl_root_cert (the CA that signed it), database.ssl_mode, and "
                    "that the host in database.url is one the certificate names"
                ) from None
            raise fail(
                f"the database is unavailable ({reason}); check database.url, that the server "
                "runs and that its disk has space"
            ) from None
        except Exception as exc:
            for expected, line in (errors or {}).items():
                if isinstance(exc, expected):
                    raise fail(line(exc)) from None
            raise

    return wrapper


class ListFormat(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[
    str,
    typer.Option(
        "--format",
        help="table (tab-separated lines with a header when stdout is not a terminal) or json",
    ),
]


def list_format(value: str) -> ListFormat:
    """The ``--format`` of a list command; a one-line error for anything else."""
    try:
        return ListFormat(value.lower())
    except ValueError:
        raise fail(f"--format must be table or json, not {value!r}", EXIT_USAGE) from None


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    # A tab or line break inside a value would split a record of the plain output.
    return " ".join(str(value).split()) or "-"


def print_records(
    records: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: ListFormat
) -> None:
    """A list command's records on stdout, every id and email whole.

    ``json``: one JSON array of the records, their keys as given (scripts rely on them).
    ``table``: the ``columns`` of each record, headed by the column names: a rich table on a
    terminal (a long cell wraps, it is never cut), otherwise tab-separated lines, one record
    per line, for grep, cut and awk: rich would cut cells to 80 columns in a pipe.
    """
    if fmt is ListFormat.json:
        typer.echo(json.dumps(list(records), indent=2, default=str))
        return
    rows = [[_cell(record.get(column)) for column in columns] for record in records]
    if not out.is_terminal:
        for row in [list(columns), *rows]:
            typer.echo("\t".join(row))
        return
    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    out.print(table, soft_wrap=False)


def note(message: str) -> None:
    """A remark beside a command's output (counts, hints): on stderr, so that stdout stays
    the data a pipe reads."""
    err.print(message, soft_wrap=True)
