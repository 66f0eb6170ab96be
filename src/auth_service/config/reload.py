"""Hot reload of configuration: SIGHUP and changes of the config file.

The new configuration is loaded from the same sources as at start and validated in full
before anything changes. Reloadable keys are applied together (one new ``Settings`` object
swapped into every service); keys that need a restart keep their running value and are
reported. A file that does not validate changes nothing. See docs/adr/0201-hot-reload.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from pydantic import SecretStr
from watchfiles import awatch

from auth_service.config.digest import config_hash
from auth_service.config.loader import ConfigError, load_settings
from auth_service.config.settings import Settings

log = structlog.get_logger(__name__)

# Dotted prefixes applied without a restart. Everything else is restart-required.
RELOADABLE: tuple[str, ...] = (
    "debug",
    "server.cors_origins",
    "server.cors_allow_credentials",
    "logging.level",
    "logging.access_log",
    "rate_limits.enabled",
    "rate_limits.login_per_ip",
    "rate_limits.login_per_account",
    "rate_limits.register_per_ip",
    "rate_limits.forgot_per_ip",
    "rate_limits.forgot_per_account",
    "rate_limits.reset_per_ip",
    "rate_limits.refresh_per_ip",
    "rate_limits.verify_per_ip",
    "lockout.",
    # Read at each delivery; webhooks.max_attempts applies to deliveries enqueued afterwards.
    "webhooks.allow_http",
    "webhooks.allowed_networks",
    "webhooks.timeout_seconds",
    "webhooks.max_response_bytes",
    "webhooks.ca_file",
    "webhooks.secret_overlap_hours",
    "webhooks.delivery_log_size",
    # OAuth: lifetimes, scopes, registration; the issuer and signing algorithms need a restart.
    "oauth.authorization_code_ttl_seconds",
    "oauth.access_token_ttl_seconds",
    "oauth.id_token_ttl_seconds",
    "oauth.refresh_token_ttl_seconds",
    "oauth.scopes",
    "oauth.secret_rotation_overlap_seconds",
    "oauth.dynamic_registration",
    "oauth.registration_initial_access_token",
    "mfa.",
    "tokens.access_token_ttl_seconds",
    "tokens.refresh_absolute_ttl_seconds",
    "tokens.refresh_idle_ttl_seconds",
    "tokens.refresh_reuse_grace_seconds",
    "tokens.clock_skew_seconds",
    "tokens.key_cache_seconds",
    "tokens.email_verification_ttl_seconds",
    "tokens.password_reset_ttl_seconds",
    "passwords.argon2_memory_cost_kib",
    "passwords.argon2_time_cost",
    "passwords.argon2_parallelism",
    "passwords.min_length",
    "passwords.max_length",
    "passwords.reject_common",
    "health.",
    "alerting.",
    "features.",
    # The pool is swapped, not resized: a new engine takes new requests while the old one
    # finishes the requests it is serving (runtime.database).
    "database.",
)


class ReloadRejected(Exception):
    """A reloadable change that cannot be applied (e.g. the new database is unreachable);
    nothing was changed. The message names the key and what to do."""


def is_reloadable(dotted: str) -> bool:
    return any(dotted == p or (p.endswith(".") and dotted.startswith(p)) for p in RELOADABLE)


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return value.as_posix()
    return value.value if hasattr(value, "value") else value


def _flat(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, Mapping) and value and key not in ("checks",):
                walk(value, f"{prefix}{key}.")
            else:
                out[f"{prefix}{key}"] = value

    walk(_plain(settings.model_dump()), "")
    return out


def diff(old: Settings, new: Settings) -> list[str]:
    a, b = _flat(old), _flat(new)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def merge_reloadable(old: Settings, new: Settings, changed: list[str]) -> Settings:
    """``old`` with the reloadable changed keys taken from ``new``, validated again."""
    data = old.model_dump()
    fresh = new.model_dump()
    for dotted in changed:
        if not is_reloadable(dotted):
            continue
        parts = dotted.split(".")
        src: Any = fresh
        dst: Any = data
        for part in parts[:-1]:
            src = src[part]
            dst = dst.setdefault(part, {})
        dst[parts[-1]] = src[parts[-1]]
    return Settings.model_validate(data)


@dataclass
class ReloadResult:
    result: str  # applied, unchanged, error
    applied: list[str] = field(default_factory=list)
    restart_required: list[str] = field(default_factory=list)
    error: str | None = None
    hash: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "applied": self.applied,
            "restart_required": self.restart_required,
            "error": self.error,
            "hash": self.hash,
        }


# Receives the settings to apply; must not fail for settings that validated.
Applier = Callable[[Settings], Awaitable[None]]
# Told about every reload's result: counted, audited when applied, alerted when failed.
Notifier = Callable[[ReloadResult], Awaitable[None]]


class ConfigReloader:
    """Reloads settings from ``config_file``, the environment and ``overrides``; one per
    process."""

    def __init__(
        self,
        current: Settings,
        config_file: Path | None,
        apply: Applier,
        notify: Notifier | None = None,
        environ: Mapping[str, str] | None = None,
        debounce_ms: int = 300,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.current = current
        self.config_file = config_file
        self._apply = apply
        self._notify = notify
        self._environ = environ
        # The command line's flags (serve --port...) win at every reload, as they did at start.
        self._overrides = overrides
        self._debounce_ms = debounce_ms
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()
        self._fingerprint = self._read_fingerprint()
        self._sighup_installed = False
        self.hash = config_hash(current)

    def _read_fingerprint(self) -> bytes | None:
        if self.config_file is None:
            return None
        try:
            # read through symlinks: a ConfigMap swap changes ..data, not the file's name.
            return hashlib.sha256(self.config_file.read_bytes()).digest()
        except OSError:
            return None

    async def reload(self, trigger: str) -> ReloadResult:
        """Load, validate and apply; an invalid configuration keeps the running one."""
        async with self._lock:
            result = await self._reload(trigger)
        if self._notify is not None:
            try:
                await self._notify(result)
            except Exception as exc:
                log.warning("config_reload_notify_failed", error=type(exc).__name__)
        return result

    async def _reload(self, trigger: str) -> ReloadResult:
        self._fingerprint = self._read_fingerprint()
        try:
            loaded = await asyncio.to_thread(
                load_settings, self.config_file, self._environ, self._overrides
            )
        except ConfigError as exc:
            log.error("config_reload_failed", trigger=trigger, error=str(exc))
            return ReloadResult("error", error=str(exc), hash=self.hash)
        changed = diff(self.current, loaded.settings)
        restart = [k for k in changed if not is_reloadable(k)]
        applied = [k for k in changed if is_reloadable(k)]
        if not applied:
            if restart:
                log.warning("config_restart_required", trigger=trigger, keys=restart)
            return ReloadResult("unchanged", restart_required=restart, hash=self.hash)
        try:
            effective = merge_reloadable(self.current, loaded.settings, changed)
            await self._apply(effective)
        except ReloadRejected as exc:
            log.error("config_reload_failed", trigger=trigger, error=str(exc))
            return ReloadResult("error", error=str(exc), hash=self.hash)
        except Exception as exc:
            log.error("config_reload_failed", trigger=trigger, error=type(exc).__name__)
            return ReloadResult("error", error=f"apply failed: {type(exc).__name__}")
        self.current = effective
        self.hash = config_hash(effective)
        log.info(
            "config_reloaded",
            trigger=trigger,
            applied=applied,
            restart_required=restart,
            config_digest=self.hash,
        )
        return ReloadResult("applied", applied, restart, hash=self.hash)

    # ---- triggers -----------------------------------------------------------------------

    def start(self) -> None:
        """Reload on SIGHUP (main thread only) and when the config file changes."""
        # watchfiles logs every batch of changes at info; our own reload log says what matters.
        logging.getLogger("watchfiles").setLevel(logging.WARNING)
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
            self._sighup_installed = True
        if self.config_file is not None:
            self._tasks.append(asyncio.create_task(self._watch(), name="config-watch"))

    def _on_sighup(self) -> None:
        self._tasks.append(asyncio.create_task(self.reload("SIGHUP"), name="config-reload"))

    async def _watch(self) -> None:
        assert self.config_file is not None
        # Watch the directory: editors and ConfigMaps replace the file (or the ..data
        # symlink) rather than writing into it, which a watch on the file itself would miss.
        directory = self.config_file.parent
        async for _ in awatch(
            directory,
            stop_event=self._stop,
            debounce=self._debounce_ms,
            step=50,
            recursive=False,
            force_polling=os.environ.get("AUTH_CONFIG_POLL") == "1",
        ):
            if self._read_fingerprint() != self._fingerprint:
                await self.reload("file")

    async def stop(self) -> None:
        self._stop.set()
        if self._sighup_installed:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._sighup_installed = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
