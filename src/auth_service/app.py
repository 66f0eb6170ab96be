"""create_app(settings): builds the FastAPI apps and wires the services. Nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import structlog
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from auth_service import __version__
from auth_service.accounts.routes import router as accounts_router
from auth_service.admin.routes import IMPORT_MEDIA_TYPE, IMPORT_PATH
from auth_service.admin.routes import router as admin_router
from auth_service.config.settings import Settings
from auth_service.flows.routes import router as flows_router
from auth_service.health.checks import build_monitor
from auth_service.health.routes import ProbeFastPath
from auth_service.health.routes import router as health_router
from auth_service.jobs.routes import router as jobs_router
from auth_service.keys.routes import CACHE_CONTROL as JWKS_CACHE_CONTROL
from auth_service.keys.routes import JWKS_PATH
from auth_service.keys.routes import MEDIA_TYPE as JWKS_MEDIA_TYPE
from auth_service.keys.routes import router as keys_router
from auth_service.mfa.routes import router as mfa_router
from auth_service.oauth import rfc8414
from auth_service.oauth.routes import DISCOVERY_CACHE_CONTROL
from auth_service.oauth.routes import router as oauth_router
from auth_service.observability import memory, metrics, tracing
from auth_service.observability.info import record_identity
from auth_service.observability.logging import AccessLog
from auth_service.privacy.routes import router as privacy_router
from auth_service.runtime.process import Runtime
from auth_service.runtime.routes import control_router
from auth_service.services import Services, build_services
from auth_service.sessions.routes import router as sessions_router
from auth_service.ui.pages import Pages
from auth_service.ui.routes import router as ui_router
from auth_service.web.cors import CorsPolicy, ReloadableCORS
from auth_service.web.docs import router as docs_router
from auth_service.web.errors import install_error_handlers
from auth_service.web.fast_me import MeFastPath
from auth_service.web.middleware import (
    BodyLimitMiddleware,
    HeadAsGetMiddleware,
    HttpRecorder,
    NoWebSocketMiddleware,
    RequestContextMiddleware,
    UnhandledErrorMiddleware,
    parse_networks,
)
from auth_service.web.openapi import document_edge_problems
from auth_service.web.protocol_front import ProtocolFront
from auth_service.web.static import Document, StaticDocuments, StaticRoute
from auth_service.webhooks.routes import router as webhooks_router

log = structlog.get_logger(__name__)

SAMPLE_INTERVAL_SECONDS = 60.0


async def _sample_gauges(services: Services) -> None:
    while True:
        try:
            metrics.ACTIVE_SESSIONS.set(await services.sessions.count_active())
            metrics.USERS_TOTAL.set(await services.accounts.identities.count())
        except Exception as exc:
            log.warning("gauge_sampling_failed", error=type(exc).__name__)
        await asyncio.sleep(SAMPLE_INTERVAL_SECONDS)


def create_management_app() -> FastAPI:
    management = FastAPI(
        title="auth-service management",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # Starlette's slash redirect builds its Location from the Host header.
        redirect_slashes=False,
        telemetry=tracing.FASTAPI_TELEMETRY,
    )
    management.include_router(health_router)
    management.include_router(control_router)
    management.add_middleware(ProbeFastPath)
    install_error_handlers(management)
    return management


def _lifespan(
    settings: Settings, services: Services | None, management: FastAPI
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start the services (built here unless injected) and the serving runtime before the
    first request; stop them after the last."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = services or build_services(settings)
        monitor = build_monitor(svc)
        # serve sets hot_reload (and where its settings came from); injected test apps never
        # watch files.
        runtime = Runtime(
            svc,
            monitor,
            config_file=getattr(app.state, "config_file", None),
            overrides=getattr(app.state, "settings_overrides", None),
            reload_enabled=getattr(app.state, "hot_reload", False),
            cors=app.state.cors_policy,
            access_log=app.state.access_log,
        )
        for target in (app, management):
            target.state.services = svc
            target.state.monitor = monitor
            target.state.runtime = runtime
        app.state.pages = Pages(svc)
        await svc.start()
        await runtime.start()
        record_identity(settings)
        sampler = asyncio.create_task(_sample_gauges(svc), name="gauge-sampler")
        frozen = getattr(app.state, "freeze_after_start", False)
        warmed = 0
        if frozen:
            # A served worker opens its kept database connections before its first request:
            # after a start, the first burst of traffic queued behind connections opened one
            # checkout at a time (bench/README.md, "the tail of me").
            warmed = await svc.db.warm()
            # A served worker: what start-up built (modules, the app, services, pools) lives
            # as long as the process; frozen out of the cyclic collector's sight, a full
            # collection no longer walks it. Under load, collections triggered by request
            # allocations were ~9% of a worker's samples on GET /v1/users/me (ADR 0420).
            gc.collect()
            gc.freeze()
            # Freed heap pages back to the system after bursts (ADR 0436).
            trimmer: asyncio.Task[None] | None = asyncio.create_task(
                memory.trim_periodically(), name="malloc-trim"
            )
        else:
            trimmer = None
        log.info(
            "started",
            version=__version__,
            env=settings.env.value,
            database=svc.db.backend.value,
            connections_opened=warmed,
        )
        try:
            yield
        finally:
            sampler.cancel()
            if trimmer is not None:
                trimmer.cancel()
            # Awaited before the pool is disposed: a sample cancelled mid-query still has to
            # hand its connection back, and after dispose() that never completes (a hang).
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            await runtime.stop()
            if frozen:
                gc.unfreeze()
            if services is None:
                await svc.close()
            tracing.shutdown_tracing()
            log.info("stopped")

    return lifespan


class ServiceApp(FastAPI):
    """The public app: FastAPI with ``StaticDocuments`` in front of its whole stack (Starlette
    builds the stack on the first request, after every middleware has been added)."""

    static_routes: list[StaticRoute]
    static_options: dict[str, Any]
    max_body_bytes: int

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if not getattr(self, "static_routes", None):
            return stack
        # Token, introspection and revocation, answered before the stack too (ADR 0760);
        # GET /v1/users/me from the identity cache, before everything (ADR 0432).
        front = ProtocolFront(stack, max_body_bytes=self.max_body_bytes, **self.static_options)
        return MeFastPath(
            StaticDocuments(front, self.static_routes, **self.static_options),
            **self.static_options,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # An HTTP request goes straight to the stack: FastAPI's own __call__ would only check
        # its native telemetry, which is off (tracing.FASTAPI_TELEMETRY), and the root path,
        # which is unset. Lifespan and WebSocket take FastAPI's path.
        stack = self.middleware_stack
        if scope["type"] != "http" or stack is None or self.root_path:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        await stack(scope, receive, send)


async def _jwks(services: Services) -> Document:
    return await services.keys.jwks_document()  # the same object until the keys change


async def _discovery(services: Services) -> Document:
    return services.oauth.discovery_document()  # the same object until settings reload


def _static_routes() -> list[StaticRoute]:
    discovery = [
        StaticRoute(path, "application/json", DISCOVERY_CACHE_CONTROL, _discovery)
        for path in (rfc8414.OPENID_CONFIGURATION, rfc8414.AUTHORIZATION_SERVER)
    ]
    return [StaticRoute(JWKS_PATH, JWKS_MEDIA_TYPE, JWKS_CACHE_CONTROL, _jwks), *discovery]


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """The public API app. ``app.state.management`` is the management app (probes, metrics).

    ``services`` may be injected (tests); otherwise they are built from ``settings`` at startup.
    """
    management = create_management_app()
    tracing.configure_tracing()  # before the engine exists, so its statements are traced

    app = ServiceApp(
        title="auth-service",
        version=__version__,
        summary="Accounts, sessions and signed tokens over HTTP.",
        lifespan=_lifespan(settings, services, management),
        openapi_url="/openapi.json",
        docs_url=None,  # served from the package by web/docs.py, not from a CDN
        redoc_url=None,
        # Starlette's slash redirect builds its Location from the Host header (an open
        # redirect to any host a client names); an unknown path is a 404 problem instead.
        redirect_slashes=False,
        telemetry=tracing.FASTAPI_TELEMETRY,
    )
    app.state.management = management
    app.state.settings = settings
    for router in (
        accounts_router,
        sessions_router,
        flows_router,
        mfa_router,
        keys_router,
        admin_router,
        privacy_router,
        jobs_router,
        webhooks_router,
        oauth_router,
        docs_router,
    ):
        app.include_router(router)
    if settings.ui.enabled:
        app.include_router(ui_router)
    if settings.server.management_port == 0:
        app.include_router(health_router)
    install_error_handlers(app)
    document_edge_problems(app)

    server = settings.server
    # Origins and credentials come from the policy, which hot reload replaces.
    app.state.cors_policy = CorsPolicy(server)
    app.state.access_log = AccessLog(settings.logging)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(NoWebSocketMiddleware)
    app.add_middleware(
        ReloadableCORS,
        policy=app.state.cors_policy,
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "DPoP", "X-Request-ID"],
        expose_headers=["DPoP-Nonce", "Retry-After", "X-Request-ID", "WWW-Authenticate"],
        max_age=600,
    )
    # Added first = innermost: unhandled errors become problem+json inside the other
    # middleware, so a 500 still carries the request id and security headers.
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=server.max_body_bytes,
        streams={IMPORT_PATH: (IMPORT_MEDIA_TYPE, server.max_import_bytes)},
    )
    hsts = server.public_url.startswith("https://")
    trusted = parse_networks(server.trusted_proxies)
    app.add_middleware(
        RequestContextMiddleware,
        trusted_proxies=trusted,
        access_log=app.state.access_log,
        security_headers=True,
        hsts=hsts,
    )
    tracing.instrument_app(app)  # outermost: the server span covers every middleware
    # In front of all of it: JWKS and discovery from prepared bytes (ADR 0420).
    app.static_routes = _static_routes()
    app.static_options = {
        "hsts": hsts,
        "trusted_proxies": trusted,
        "recorder": HttpRecorder(app.state.access_log),
    }
    app.max_body_bytes = server.max_body_bytes
    return app


class PortDispatcher:
    """One ASGI callable for both listeners: the management port gets the management app.

    Lifespan events go to the public app, which starts the services both apps share.
    """

    def __init__(self, public: FastAPI, management_port: int) -> None:
        self.public = public
        self.management: ASGIApp = public.state.management
        self.management_port = management_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan" and self.management_port:
            server = scope.get("server")
            if server and server[1] == self.management_port:
                await self.management(scope, receive, send)
                return
        await self.public(scope, receive, send)
