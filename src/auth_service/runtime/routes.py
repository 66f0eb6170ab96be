"""Control endpoints of a serving process: only on the management listener, never on the
public one (``server.management_port: 0`` included)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from auth_service.runtime.process import Runtime

control_router = APIRouter()


@control_router.post("/config/reload")
async def reload_config(request: Request) -> JSONResponse:
    """Reload this worker's configuration now (SIGHUP reaches every worker)."""
    runtime: Runtime = request.app.state.runtime
    result = await runtime.reloader.reload("http")
    return JSONResponse(
        result.as_dict(),
        status_code=422 if result.result == "error" else 200,
        headers={"Cache-Control": "no-store"},
    )
