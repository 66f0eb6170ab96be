"""JWKS (RFC 7517 section 5): the public keys that verify our access tokens.

Every relying party polls this document, so it is the service's hottest cheap endpoint. It is
served from bytes serialised once per key reload (``KeyService.jwks_document``), with a strong
ETag so a poller that already has it gets a 304 (RFC 9110 section 13.1.2), and
``JwksFastPath`` answers it ahead of FastAPI's router and dependency resolution, inside the
service's middleware (request id, access log, metrics, tracing, security headers and CORS
apply as to any route). The route below stays the documented, routed equivalent.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from auth_service.keys.service import JwksDocument
from auth_service.web.deps import ServicesDep

JWKS_PATH = "/.well-known/jwks.json"
MEDIA_TYPE = "application/jwk-set+json"
# Short enough that a rotation's next key reaches caches well before it signs.
CACHE_CONTROL = "public, max-age=300"

router = APIRouter()


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names this representation (weak comparison, or ``*``)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _headers(document: JwksDocument, body: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"cache-control", CACHE_CONTROL.encode()),
        (b"etag", document.etag.encode()),
    ]
    if body:
        headers += [
            (b"content-type", MEDIA_TYPE.encode()),
            (b"content-length", str(len(document.body)).encode()),
        ]
    return headers


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


class JwksFastPath:
    """Answers ``GET /.well-known/jwks.json`` before routing (the same response as the route).

    Sits innermost among the service's middleware, so only Starlette's exception layer,
    the router and FastAPI's dependency resolution are skipped: about half of what the
    endpoint cost (bench/README.md). The matched route is recorded in the scope as the
    router would, so metrics and the access log name its template. If the key cache needs a
    reload and that fails, the request takes the routed path, whose error handlers turn the
    failure into the usual problem response.
    """

    def __init__(self, app: ASGIApp, route: BaseRoute) -> None:
        self.app = app
        self.route = route
        # Headers of the current document, built once per key reload rather than per request.
        self._document: JwksDocument | None = None
        self._full: list[tuple[bytes, bytes]] = []
        self._not_modified: list[tuple[bytes, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != JWKS_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        try:
            document = await scope["app"].state.services.keys.jwks_document()
        except Exception:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        if document is not self._document:
            self._full, self._not_modified = _headers(document, True), _headers(document, False)
            self._document = document
        if_none_match = None
        for key, value in scope["headers"]:
            if key == b"if-none-match":
                if_none_match = value.decode("latin-1")
        if not_modified(if_none_match, document.etag):
            await send(
                {
                    "type": "http.response.start",
                    "status": 304,
                    "headers": list(self._not_modified),
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": list(self._full)})
        await send({"type": "http.response.body", "body": document.body})
