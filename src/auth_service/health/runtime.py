"""What a serving process runs beside the HTTP app: monitor, alerter, config reload, drain.

``create_app``'s lifespan starts one ``Runtime`` per worker process.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from auth_service.audit import events
from auth_service.audit.context import SYSTEM
from auth_service.config.reload import (
    ConfigReloader,
    ReloadRejected,
    ReloadResult,
    apply_log_level,
)
from auth_service.config.sections import Severity
from auth_service.config.settings import Settings
from auth_service.db.engine import create_engine
from auth_service.db.migrate import current_revision, head_revision
from auth_service.health.alerting.alerts import Alerter
from auth_service.health.checks import build_checks
from auth_service.health.monitor import HealthMonitor
from auth_service.mail.service import build_transport
from auth_service.observability.logging import AccessLog
from auth_service.services import Services
from auth_service.web.cors import CorsPolicy

log = structlog.get_logger(__name__)

RELOAD_ALERT = "config:reload_failed"


def build_monitor(services: Services) -> HealthMonitor:
    monitor = HealthMonitor()
    for check in build_checks(services, services.settings):
        monitor.register(check)
    return monitor


@dataclass
class Runtime:
    services: Services
    monitor: HealthMonitor
    config_file: Path | None = None
    reload_enabled: bool = False
    cors: CorsPolicy | None = None
    access_log: AccessLog | None = None

    def __post_init__(self) -> None:
        settings = self.services.settings
        self.alerter = Alerter(
            settings.alerting,
            settings.mail,
            build_transport(settings.mail, settings.outbox_dir),
            self.services.redis,
        )
        self.reloader = ConfigReloader(
            settings, self.config_file, self.apply, notify=self._after_reload
        )
        self._previous_term: Any = None

    async def start(self) -> None:
        if self.services.settings.alerting.enabled:
            self.monitor.listeners.append(self.alerter.on_check)
        await self.alerter.start()
        await self.monitor.start()
        self.monitor.started = True
        if self.reload_enabled:
            self.reloader.start()
            self._install_drain_handler()

    async def stop(self) -> None:
        self.monitor.start_draining()
        await self.reloader.stop()
        await self.monitor.stop()
        await self.alerter.stop()
        if self._previous_term is not None:
            signal.signal(signal.SIGTERM, self._previous_term)

    # ---- hot reload -----------------------------------------------------------------------

    async def apply(self, new: Settings) -> None:
        """Swap reloadable settings into every service; each swap is a reference assignment."""
        svc = self.services
        old = svc.settings
        # First, because it is the one step that can fail: nothing else changes if it does.
        if new.database != old.database:
            await self._swap_database(new)
        svc.limiter.apply_settings(new.rate_limits)
        svc.lockout.settings = new.lockout
        svc.hasher.apply_settings(new.passwords)
        svc.keys.apply_settings(new.tokens)
        svc.access_tokens.apply_settings(new.tokens)
        svc.sessions.apply_settings(new.tokens)
        svc.accounts.apply_settings(new)
        svc.settings = new
        if self.cors is not None:
            self.cors.apply_settings(new.server)
        if new.logging != old.logging:
            apply_log_level(new)
            if self.access_log is not None:
                self.access_log.apply_settings(new.logging)
        if new.alerting != old.alerting:
            self.alerter.apply_settings(new.alerting)
            if new.alerting.enabled and self.alerter.on_check not in self.monitor.listeners:
                self.monitor.listeners.append(self.alerter.on_check)
            if not new.alerting.enabled and self.alerter.on_check in self.monitor.listeners:
                self.monitor.listeners.remove(self.alerter.on_check)
        if new.health != old.health:
            await self.monitor.replace_checks(build_checks(svc, new))

    async def _swap_database(self, new: Settings) -> None:
        """Drained pool swap: a new engine takes every new request once it has proven it can
        serve (reachable, schema at head); requests holding a connection of the old pool
        finish on it, and the old pool closes each connection as it is returned."""
        engine = create_engine(new)
        try:
            async with asyncio.timeout(new.database.pool_timeout_seconds):
                revision = await current_revision(engine)
        except Exception as exc:
            await engine.dispose()
            raise ReloadRejected(
                f"database: cannot use the new database ({type(exc).__name__}); "
                "kept the current one - check database.url and that the server is reachable"
            ) from None
        if revision != head_revision():
            await engine.dispose()
            raise ReloadRejected(
                f"database: the new database is at schema {revision or 'nothing'}, expected "
                f"{head_revision()}; run `auth-service migrate` against it first"
            )
        old = self.services.db.replace_engine(engine)
        await old.dispose()
        log.info("database_swapped", dialect=self.services.db.backend.value)

    async def _after_reload(self, result: ReloadResult) -> None:
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

    # ---- graceful shutdown -------------------------------------------------------------------

    def _install_drain_handler(self) -> None:
        """SIGTERM: readiness 503 at once, keep serving ``drain_delay_seconds``, then let
        uvicorn stop accepting and finish in-flight requests within its graceful timeout."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        previous = signal.getsignal(signal.SIGTERM)
        self._previous_term = previous

        def begin_drain(sig: int, frame: FrameType | None) -> None:
            self.monitor.start_draining()
            delay = self.services.settings.health.drain_delay_seconds
            if callable(previous):
                loop.call_later(delay, previous, sig, frame)

        def on_term(sig: int, frame: FrameType | None) -> None:
            # A signal handler may interrupt the main thread in the middle of writing a log
            # line; logging from here could deadlock on the handler's lock. Hand over to the
            # event loop, which runs the drain on its next iteration.
            loop.call_soon_threadsafe(begin_drain, sig, frame)

        signal.signal(signal.SIGTERM, on_term)
