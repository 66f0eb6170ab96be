"""`auth-service healthcheck`: a probe for container HEALTHCHECKs (stdlib only, no curl)."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Annotated

import typer

from auth_service.cli.common import err


def healthcheck(
    probe: Annotated[str, typer.Option(help="live, ready or started")] = "live",
    url: Annotated[str | None, typer.Option(help="probe URL (default: management port)")] = None,
    timeout: Annotated[float, typer.Option(help="seconds")] = 3.0,
) -> None:
    """Exit 0 when the probe answers 200, 1 otherwise."""
    if probe not in {"live", "ready", "started"}:
        err.print("error: --probe must be live, ready or started")
        raise typer.Exit(2)
    target = url or f"http://127.0.0.1:9000/health/{probe}"
    if not target.startswith(("http://", "https://")):
        err.print("error: --url must be http(s)")
        raise typer.Exit(2)
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:  # noqa: S310 - scheme checked
            ok = response.status == 200
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        err.print(f"unhealthy: {target}: {exc}")
        raise typer.Exit(1) from None
    if not ok:
        raise typer.Exit(1)
