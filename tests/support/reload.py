"""Reloading an in-process app's configuration from a file, as its watch or SIGHUP would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from auth_service.config.settings import Settings
from auth_service.runtime.process import Runtime
from tests.support.api import Api


def _revealed(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _revealed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_revealed(v) for v in value]
    return value


def dump(settings: Settings) -> dict[str, Any]:
    """The settings as a config file would hold them (secrets included)."""
    data: dict[str, Any] = json.loads(json.dumps(_revealed(settings.model_dump()), default=str))
    return data


def runtime_of(api: Api, path: Path) -> Runtime:
    runtime: Runtime = api.management._transport.app.state.runtime  # type: ignore[attr-defined]
    runtime.reloader.config_file = path
    runtime.reloader._environ = {}
    return runtime
