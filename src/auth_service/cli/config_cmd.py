"""`auth-service config ...`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
import yaml
from pydantic import SecretStr

from auth_service.cli.common import loaded_settings, out
from auth_service.config.settings import SECRET_PATHS

app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)

MASK = "********"


def masked(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            result[key] = masked(value, path + ".")
        elif path in SECRET_PATHS or isinstance(value, SecretStr):
            result[key] = MASK if value is not None else None
        else:
            result[key] = value
    return result


@app.command("show")
def show(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="yaml or json")] = "yaml",
    sources: Annotated[
        bool, typer.Option("--sources", help="also say where each value came from")
    ] = False,
) -> None:
    """Print the effective settings with secrets masked."""
    loaded = loaded_settings(ctx)
    data = masked(loaded.settings.model_dump(mode="json"))
    if sources:
        data = {"settings": data, "sources": dict(sorted(loaded.sources.items()))}
    if fmt == "json":
        out.print_json(json.dumps(data))
    else:
        out.print(yaml.safe_dump(data, sort_keys=False), end="", markup=False)
