"""`auth-service config ...`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import SecretStr

from auth_service.cli.common import EXIT_CONFIG, fail, loaded_settings, out
from auth_service.cli.config_audit import audit, exit_code
from auth_service.config.loader import ConfigError, LoadedSettings, load_settings
from auth_service.config.settings import SECRET_PATHS, Environment

app = typer.Typer(help="Inspect and audit configuration.", no_args_is_help=True)

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


@app.command("check")
def check(
    ctx: typer.Context,
    env: Annotated[
        str | None, typer.Option("--env", help="audit as this environment (its profile)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Security audit of the effective configuration; the exit code is the worst finding.

    Exit codes: 0 clean (or info only), 3 warning, 4 error, 5 critical, 2 invalid config.
    """
    if fmt not in ("text", "json"):
        raise fail("--format must be text or json", EXIT_CONFIG)
    loaded = _load_for(ctx, env)
    findings = audit(loaded)
    code = exit_code(findings)
    if fmt == "json":
        out.print_json(
            json.dumps(
                {
                    "env": loaded.settings.env.value,
                    "config_file": str(loaded.config_file) if loaded.config_file else None,
                    "findings": [f.as_dict() for f in findings],
                    "exit_code": code,
                }
            )
        )
    else:
        where = loaded.config_file or "no config file"
        out.print(f"config check: env {loaded.settings.env.value} ({where})", markup=False)
        for f in findings:
            line = f"{f.level.name.upper():9} {f.key}: {f.message} [{f.source}]"
            out.print(line, markup=False, soft_wrap=True)
        if not findings:
            out.print("no findings", markup=False)
    raise typer.Exit(code)


def _load_for(ctx: typer.Context, env: str | None) -> LoadedSettings:
    if env is None:
        return loaded_settings(ctx)
    if env not in Environment.__members__:
        raise fail(f"--env {env!r}: expected one of development, staging, production", EXIT_CONFIG)
    environ = {**os.environ, "AUTH_ENV": env}
    config: Path | None = (ctx.obj or {}).get("config")
    try:
        return load_settings(config, environ)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None
