"""Assemble ``Settings`` from its sources, remembering where each value came from.

Precedence, lowest first (documented in docs/configuration.md):

1. defaults in ``config.settings``;
2. the YAML profile: ``--config FILE``, else ``config/<AUTH_ENV>.yaml`` when it exists;
3. secret files: ``AUTH_<PATH>_FILE`` for every secret (``AUTH_MASTER_KEY_FILE``,
   ``AUTH_DATABASE__URL_FILE``...), as Kubernetes and Docker mount them;
4. environment variables ``AUTH_<SECTION>__<KEY>``;
5. explicit overrides by dotted key, from the command line (``serve --port``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings import EnvSettingsSource

from auth_service.config.settings import SECRET_PATHS, Environment, Settings

ENV_PREFIX = "AUTH_"
NESTED = "__"
# Variables with our prefix that configure the tooling, not the service.
_NOT_SETTINGS = frozenset({"AUTH_ENV", "AUTH_CONFIG"})


class ConfigError(Exception):
    """Configuration cannot be loaded; the message names the key and the source."""


@dataclass
class LoadedSettings:
    settings: Settings
    sources: dict[str, str] = field(default_factory=dict)
    config_file: Path | None = None


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _merge(into: dict[str, Any], data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, Mapping):
            into[key] = {}
            _merge(into[key], value)
        else:
            into[key] = value


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(data: Any, environ: Mapping[str, str], path: Path, key: str = "") -> Any:
    """Expand ``${NAME}`` and ``${NAME:-default}`` in string values from the environment.

    Profiles can then hold deployment-specific values (the public URL, the pod IP) without
    a copy of the file per deployment.
    """
    if isinstance(data, dict):
        return {
            k: _interpolate(v, environ, path, f"{key}.{k}" if key else str(k))
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_interpolate(v, environ, path, key) for v in data]
    if not isinstance(data, str) or "${" not in data:
        return data

    def expand(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{key}: ${{{name}}} is not set in the environment (from file {path})")

    return _VARIABLE.sub(expand, data)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} invalid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of settings")
    return data


def _secret_files(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for dotted in SECRET_PATHS:
        var = ENV_PREFIX + dotted.replace(".", NESTED).upper() + "_FILE"
        file_name = environ.get(var)
        if not file_name:
            continue
        try:
            value = Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"{var}: cannot read secret file {file_name} ({exc.strerror})"
            ) from None
        if not value:
            raise ConfigError(f"{var}: secret file {file_name} is empty")
        _set_path(data, dotted, value)
        sources[dotted] = f"secret file {file_name} ({var})"
    return data, sources


def _is_known(parts: list[str]) -> bool:
    model: type[BaseModel] = Settings
    for i, part in enumerate(parts):
        info = model.model_fields.get(part)
        if info is None:
            return False
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return i == len(parts) - 1
    return True


def _environment(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    relevant = {
        k: v
        for k, v in environ.items()
        if k.startswith(ENV_PREFIX)
        and k not in _NOT_SETTINGS
        and not k.endswith("_FILE")
        and not k.startswith("AUTH_TEST_")
    }
    source = EnvSettingsSource(
        Settings,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED,
        case_sensitive=False,
    )
    source.env_vars = {k.lower(): v for k, v in relevant.items()}
    try:
        data = source()
    except Exception as exc:  # pydantic-settings raises SettingsError on undecodable JSON
        raise ConfigError(f"environment: {exc}") from None
    for var in sorted(relevant):
        parts = var[len(ENV_PREFIX) :].lower().split(NESTED)
        if not _is_known(parts):
            raise ConfigError(f"environment: unknown setting {var}")
    sources = {
        p: "environment " + ENV_PREFIX + p.replace(".", NESTED).upper() for p in _flatten(data)
    }
    return data, sources


def _overrides(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    data: dict[str, Any] = {}
    for dotted, value in overrides.items():
        _set_path(data, dotted, value)
    return data, dict.fromkeys(overrides, "command line")


def resolve_config_file(config_file: Path | None, environ: Mapping[str, str]) -> Path | None:
    if config_file is not None:
        return config_file
    if environ.get("AUTH_CONFIG"):
        return Path(environ["AUTH_CONFIG"])
    env_name = environ.get("AUTH_ENV", Environment.development.value)
    if env_name not in Environment.__members__:
        raise ConfigError(
            f"AUTH_ENV={env_name!r}: expected one of development, staging, production"
        )
    candidate = Path("config") / f"{env_name}.yaml"
    return candidate if candidate.is_file() else None


def _origin(sources: Mapping[str, str], dotted: str) -> str:
    """Where a failing value came from; for a section-level error, where its keys came from."""
    below = sorted({v for k, v in sources.items() if k.startswith(dotted + ".")})
    if dotted not in sources and below:
        return ", ".join(below)
    while dotted:  # a list item's error: the list is one value in the sources
        if dotted in sources:
            return sources[dotted]
        dotted = dotted.rpartition(".")[0]
    return "defaults"


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> LoadedSettings:
    """Load and validate settings; raise ConfigError with a one-line reason.

    ``overrides`` (dotted key to value, e.g. ``{"server.port": 8001}``) win over every source.
    """
    env = os.environ if environ is None else environ
    path = resolve_config_file(config_file, env)
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if path is not None:
        data = _interpolate(read_yaml(path), env, path)
        _merge(merged, data)
        sources.update(dict.fromkeys(_flatten(data), f"file {path}"))
    if "AUTH_ENV" in env and "env" not in merged:
        merged["env"] = env["AUTH_ENV"]
        sources["env"] = "environment AUTH_ENV"
    for layer in (_secret_files(env), _environment(env), _overrides(overrides or {})):
        data, layer_sources = layer
        _merge(merged, data)
        sources.update(layer_sources)
    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        dotted = ".".join(str(p) for p in err["loc"])
        origin = _origin(sources, dotted)
        raise ConfigError(f"{dotted}: {err['msg']} (from {origin})") from None
    return LoadedSettings(settings=settings, sources=sources, config_file=path)
