"""The framework ceiling: one FastAPI route returning a small JSON object, nothing else.

Served by uvicorn with the same workers, loop and HTTP parser as the service, it measures
what the stack itself costs per request; the service's cheap endpoints are reported against it.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

_BODY = {"keys": [{"kty": "EC", "crv": "P-256", "kid": "trivial", "use": "sig"}]}


@app.get("/trivial")
async def trivial() -> JSONResponse:
    return JSONResponse(_BODY)
