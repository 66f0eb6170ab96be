"""One serving process's runtime: monitor, alerter, job worker, config reload and drain,
started and stopped with the HTTP app, and the reload hooks that carry a new configuration
into them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auth_service.audit import events
from auth_service.audit.context import SYSTEM
from auth_service.backup.scheduled import attach as attach_backup
from auth_service.config.hooks import ReloadHooks
from auth_service.config.reload import ConfigReloader, ReloadResult
from auth_service.config.sections import Severity
from auth_service.config.settings import Settings
from auth_service.health.alerting.alerts import Alerter
from auth_service.health.checks import build_checks
from auth_service.health.monitor import HealthMonitor
from auth_service.jobs.worker import JobWorker
from auth_service.observability import metrics
from auth_service.observability.info import record_config
from auth_service.observability.logging import AccessLog, set_log_level
from auth_service.runtime.database import swap_database
from auth_service.runtime.drain import DrainOnTerm
from auth_service.services import Services
from auth_service.web.cors import CorsPolicy

RELOAD_ALERT = "config:reload_failed"


@dataclass
class Runtime:
    services: Services
    monitor: HealthMonitor
    config_file: Path | None = None
    overrides: Mapping[str, Any] | None = None
    reload_enabled: bool = False
    cors: CorsPolicy | None = None
    access_log: AccessLog | None = None

    def __post_init__(self) -> None:
        settings = self.services.settings
        self.alerter = Alerter(
            settings.alerting, settings.mail, self.services.mail.transport, self.services.redis
        )
        self.hooks = ReloadHooks()
        self._register_reload_hooks()
        self.reloader = ConfigReloader(
            settings,
            self.config_file,
            self.apply,
            notify=self._after_reload,
            overrides=self.overrides,
        )
        self.drain = DrainOnTerm(
            self.monitor, lambda: self.services.settings.health.drain_delay_seconds
        )
        # jobs.workers jobs at a time in this process (0: the jobs run in `jobs work`).
        attach_backup(self.services, settings)
        self.jobs = JobWorker(self.services.jobs, self.services.job_upkeep, scheduling=True)

    async def start(self) -> None:
        if self.services.settings.alerting.enabled:
            self.monitor.listeners.append(self.alerter.on_check)
        await self.alerter.start()
        await self.monitor.start()
        self.monitor.started = True
        self.jobs.start()
        if self.reload_enabled:
            self.reloader.start()
            self.drain.install()

    async def stop(self) -> None:
        self.monitor.start_draining()
        await self.reloader.stop()
        # Running jobs finish within jobs.drain_seconds, or go back to the queue.
        await self.jobs.stop(self.services.settings.jobs.drain_seconds)
        await self.monitor.stop()
        await self.alerter.stop()
        self.drain.uninstall()

    # ---- hot reload -----------------------------------------------------------------------

    async def apply(self, new: Settings) -> None:
        """Hand reloaded settings to every reload hook (config.hooks: order and failures)."""
        await self.hooks.apply(new, previous=self.services.settings)

    def _register_reload_hooks(self) -> None:
        # First: the one step that can refuse; nothing else has changed when it does.
        self.hooks.register(
            "database",
            lambda new: swap_database(self.services.db, new),
            when_changed=lambda s: s.database,
        )
        self.services.register_reload_hooks(self.hooks)
        if self.cors is not None:
            cors = self.cors
            self.hooks.register("cors", lambda new: cors.apply_settings(new.server))
        self.hooks.register("logging", self._apply_logging, when_changed=lambda s: s.logging)
        self.hooks.register("alerting", self._apply_alerting, when_changed=lambda s: s.alerting)
        self.hooks.register(
            "health",
            lambda new: self.monitor.replace_checks(build_checks(self.services, new)),
            when_changed=lambda s: s.health,
        )

    def _apply_logging(self, new: Settings) -> None:
        # The level changes in place: the handlers (wherever logs are going) stay.
        set_log_level(new.logging.level)
        if self.access_log is not None:
            self.access_log.apply_settings(new.logging)

    def _apply_alerting(self, new: Settings) -> None:
        self.alerter.apply_settings(new.alerting)
        listening = self.alerter.on_check in self.monitor.listeners
        if new.alerting.enabled and not listening:
            self.monitor.listeners.append(self.alerter.on_check)
        if not new.alerting.enabled and listening:
            self.monitor.listeners.remove(self.alerter.on_check)

    async def _after_reload(self, result: ReloadResult) -> None:
        metrics.CONFIG_RELOADS.labels(result.result).inc()
        if result.result == "applied":
            record_config(self.services.settings)
        if result.result == "error":
            await self.alerter.fire(
                RELOAD_ALERT, Severity.warning, f"configuration reload failed: {result.error}"
            )
            return
        await self.alerter.resolve(RELOAD_ALERT)
        if result.result == "applied":
            await self.services.audit.record(
                events.CONFIG_RELOADED,
                SYSTEM,
                details={
                    "applied": result.applied,
                    "restart_required": result.restart_required,
                    "config_digest": result.hash,
                },
            )
