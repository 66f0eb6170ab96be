"""JWKS (RFC 7517 section 5): the public keys that verify our access tokens."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from auth_service.web.deps import ServicesDep

router = APIRouter()


@router.get("/.well-known/jwks.json", tags=["keys"])
async def jwks(services: ServicesDep) -> JSONResponse:
    # Short enough that a rotation's next key reaches caches well before it signs.
    return JSONResponse(
        await services.keys.jwks(),
        headers={"Cache-Control": "public, max-age=300"},
        media_type="application/jwk-set+json",
    )
