"""Management endpoints: probes (Keycloak-compatible paths) and Prometheus metrics."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from auth_service import __version__
from auth_service.health.monitor import HealthMonitor

router = APIRouter()

_NO_CACHE = {"Cache-Control": "no-store"}


def _monitor(request: Request) -> HealthMonitor:
    monitor: HealthMonitor = request.app.state.monitor
    return monitor


def _probe(ok: bool, status_text: str) -> JSONResponse:
    return JSONResponse(
        {"status": "UP" if ok else "DOWN", "detail": status_text},
        status_code=200 if ok else 503,
        headers=_NO_CACHE,
    )


@router.get("/health/live")
async def live() -> JSONResponse:
    """The process and its event loop answer. No dependency is consulted, on purpose."""
    return _probe(True, "alive")


@router.get("/health/ready")
async def ready(request: Request) -> JSONResponse:
    monitor = _monitor(request)
    if monitor.draining:
        return _probe(False, "draining")
    if not monitor.started:
        return _probe(False, "starting")
    return _probe(monitor.ready, "ready" if monitor.ready else "a critical check is down")


@router.get("/health/started")
async def started(request: Request) -> JSONResponse:
    monitor = _monitor(request)
    return _probe(monitor.started, "started" if monitor.started else "starting")


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    monitor = _monitor(request)
    overall = monitor.overall()
    return JSONResponse(
        {
            "status": overall.value,
            "version": __version__,
            "checks": {name: state.as_dict() for name, state in monitor.states.items()},
        },
        status_code=200 if monitor.ready else 503,
        headers=_NO_CACHE,
    )


@router.get("/metrics")
async def metrics() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        data = generate_latest(registry)
    else:
        data = generate_latest(REGISTRY)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
