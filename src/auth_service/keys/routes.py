"""JWKS (RFC 7517 section 5): the public keys that verify our access tokens.

Every relying party polls this document, so it is the service's hottest cheap endpoint. It is
served from bytes serialised once per key reload (``KeyService.jwks_document``), with a strong
ETag so a poller that already has it gets a 304 (RFC 9110 section 13.1.2), and
``web.static.StaticDocuments`` answers it in front of the FastAPI stack (ADR 0420). The route
below stays the documented, routed equivalent, which the front layer hands requests it does
not answer itself (CORS, a request body, a key cache that fails to load).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from auth_service.web.deps import ServicesDep
from auth_service.web.static import not_modified

JWKS_PATH = "/.well-known/jwks.json"
MEDIA_TYPE = "application/jwk-set+json"
# Short enough that a rotation's next key reaches caches well before it signs.
CACHE_CONTROL = "public, max-age=300"

router = APIRouter()


@router.get(
    JWKS_PATH,
    tags=["keys"],
    response_class=Response,
    responses={
        200: {"content": {MEDIA_TYPE: {}}, "description": "The JSON Web Key Set"},
        304: {"description": "Unchanged since the ETag in If-None-Match"},
    },
)
async def jwks(services: ServicesDep, request: Request) -> Response:
    document = await services.keys.jwks_document()
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": document.etag}
    if not_modified(request.headers.get("if-none-match"), document.etag):
        return Response(status_code=304, headers=headers)
    return Response(document.body, media_type=MEDIA_TYPE, headers=headers)
