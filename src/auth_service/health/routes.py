"""Management endpoints: probes (Keycloak-compatible paths) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Receive, Scope, Send

from auth_service import __version__
from auth_service.health.monitor import HealthMonitor
from auth_service.observability.metrics import SCRAPE_WAIT_SECONDS, fold_pending
from auth_service.services import Services

router = APIRouter()

_NO_CACHE = {"Cache-Control": "no-store"}


def _monitor(request: Request) -> HealthMonitor:
    monitor: HealthMonitor = request.app.state.monitor
    return monitor


def live_state(_monitor: HealthMonitor) -> tuple[bool, str]:
    """The process and its event loop answer. No dependency is consulted, on purpose."""
    return True, "alive"


def ready_state(monitor: HealthMonitor) -> tuple[bool, str]:
    """Ready when started, not draining and no critical check is down. The detail names the
    checks that are not up, so the probe says why (``a critical check is down: database``,
    or ``ready; redis down`` while a non-critical dependency is out)."""
    if monitor.draining:
        return False, "draining"
    if not monitor.started:
        return False, "starting"
    if not monitor.ready:
        down = [n for n in monitor.not_up(critical=True) if monitor.states[n].status == "down"]
        return False, "a critical check is down: " + ", ".join(down)
    others = monitor.not_up(critical=False) + monitor.not_up(critical=True)
    if not others:
        return True, "ready"
    return True, "ready; " + ", ".join(f"{n} {monitor.states[n].status}" for n in sorted(others))


def started_state(monitor: HealthMonitor) -> tuple[bool, str]:
    return monitor.started, "started" if monitor.started else "starting"


PROBES: dict[str, Callable[[HealthMonitor], tuple[bool, str]]] = {
    "/health/live": live_state,
    "/health/ready": ready_state,
    "/health/started": started_state,
}


def _probe_body(ok: bool, detail: str) -> dict[str, str]:
    return {"status": "UP" if ok else "DOWN", "detail": detail}


def _probe_route(path: str) -> None:
    decide = PROBES[path]

    async def probe(request: Request) -> JSONResponse:
        ok, detail = decide(_monitor(request))
        return JSONResponse(
            _probe_body(ok, detail), status_code=200 if ok else 503, headers=_NO_CACHE
        )

    probe.__doc__ = decide.__doc__
    router.add_api_route(path, probe, methods=["GET"], name=path.rsplit("/", 1)[-1])


for _path in PROBES:
    _probe_route(_path)


class ProbeFastPath:
    """Answers the probes before FastAPI routing: same decisions and bodies, a fraction of
    the server time (bench/health). Kubernetes may probe every pod several times a second."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._bodies: dict[tuple[bool, str], bytes] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        decide = PROBES.get(scope["path"]) if scope["type"] == "http" else None
        if decide is None or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        ok, detail = decide(scope["app"].state.monitor)
        body = self._bodies.get((ok, detail))
        if body is None:
            body = json.dumps(_probe_body(ok, detail), separators=(",", ":")).encode()
            self._bodies[(ok, detail)] = body
        await send(
            {
                "type": "http.response.start",
                "status": 200 if ok else 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"cache-control", b"no-store"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """Every check with its cached state; ``health.expose_details: false`` hides the checks."""
    monitor = _monitor(request)
    overall = monitor.overall()
    body: dict[str, object] = {"status": overall.value, "version": __version__}
    services: Services = request.app.state.services
    if services.settings.health.expose_details:
        body["checks"] = {
            name: {**state.as_dict(), "critical": monitor.checks[name].critical}
            for name, state in monitor.states.items()
        }
    return JSONResponse(body, status_code=200 if monitor.ready else 503, headers=_NO_CACHE)


@router.get("/metrics")
async def metrics() -> Response:
    fold_pending()  # this process's plain HTTP counts (also done by a collection of REGISTRY)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # The other workers fold theirs within metrics.FOLD_SECONDS of a request: wait for that, so
        # that a scrape counts every request finished before it began (ADR 0435).
        await asyncio.sleep(SCRAPE_WAIT_SECONDS)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        data = generate_latest(registry)
    else:
        data = generate_latest(REGISTRY)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
