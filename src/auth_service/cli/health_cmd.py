"""`auth-service healthcheck` inside the full CLI (the console script short-cuts to cli/probe)."""

from __future__ import annotations

from typing import Annotated

import typer

from auth_service.cli.common import err
from auth_service.cli.probe import check


def healthcheck(
    probe: Annotated[str, typer.Option(help="live, ready or started")] = "live",
    url: Annotated[str | None, typer.Option(help="probe URL (default: management port)")] = None,
    timeout: Annotated[float, typer.Option(help="seconds")] = 3.0,
    cafile: Annotated[
        str | None, typer.Option(help="PEM CA an https --url is checked with")
    ] = None,
) -> None:
    """Exit 0 when the probe answers 200, 1 otherwise."""
    code, message = check(probe, url, timeout, cafile)
    if code:
        err.print(message)
        raise typer.Exit(code)
