"""The static documents (JWKS and both discovery documents), answered in front of FastAPI.

Relying parties poll these documents; each is bytes serialised once (per key reload for the
JWKS, per settings object for discovery) with a strong ETag. ``StaticDocuments`` sits in front
of the whole FastAPI stack (``ServiceApp.build_middleware_stack``): no Starlette error layer,
no middleware chain, no router, no dependency resolution. It does itself what that chain would
do for these documents, from header lists built once per document:

- the response's own headers as the route's (``Cache-Control``, ``ETag``, ``Content-Type``,
  ``Content-Length``), then the security headers ``SecurityHeadersMiddleware`` adds (HSTS too
  when the public URL is https), then ``X-Request-ID`` (an acceptable incoming one, or new);
- ``If-None-Match`` → 304, HEAD → the GET's headers without the body;
- the HTTP metrics and the access line, as ``RequestContextMiddleware`` records them;
- no server span: a static document is not traced (ADR 0420).

Anything it does not answer in exactly today's way goes to the full stack: another method, an
``Origin`` header (CORS decides), a request body (the body limit decides), a document that
cannot be loaded (the route's error handlers answer). The routes stay the documented, routed
equivalent; ``tests/api/test_static_documents.py`` compares both.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from auth_service.web.middleware import (
    API_SECURITY_HEADERS,
    HSTS_HEADER,
    REQUEST_ID_PATTERN,
    HttpRecorder,
    Network,
    client_ip,
    uuid4_hex,
)


class Document(Protocol):
    @property
    def body(self) -> bytes: ...

    @property
    def etag(self) -> str: ...


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names this representation (weak comparison, or ``*``)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


# Given the app's services, the current document (the same object while it is unchanged).
Loader = Callable[[Any], Awaitable[Document]]


@dataclass(frozen=True)
class StaticRoute:
    path: str
    media_type: str
    cache_control: str
    load: Loader


class _Prepared:
    """One document's response headers, built once per document object."""

    __slots__ = ("body", "document", "etag", "full", "length", "unmodified")

    def __init__(self, route: StaticRoute, document: Document, extra: list[Any]) -> None:
        self.document = document
        self.body = document.body
        self.etag = document.etag
        self.length = len(self.body)
        own = [(b"cache-control", route.cache_control.encode()), (b"etag", self.etag.encode())]
        content = [
            (b"content-type", route.media_type.encode()),
            (b"content-length", str(self.length).encode()),
        ]
        self.full = own + content + extra
        self.unmodified = own + extra


_SKIP_HEADERS = frozenset({b"origin", b"content-length", b"transfer-encoding"})


class StaticDocuments:
    """ASGI layer in front of the FastAPI stack ``app`` (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        routes: list[StaticRoute],
        *,
        hsts: bool,
        trusted_proxies: tuple[Network, ...],
        recorder: HttpRecorder,
    ) -> None:
        self.app = app
        self.routes = {r.path: r for r in routes}
        self.trusted = trusted_proxies
        self.recorder = recorder
        self._extra: list[Any] = list(API_SECURITY_HEADERS)
        if hsts:
            self._extra.append(HSTS_HEADER)
        self._prepared: dict[str, _Prepared] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        method = scope["method"] if route is not None else None
        if route is None or (method != "GET" and method != "HEAD"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        incoming = forwarded = if_none_match = None
        for key, value in scope["headers"]:
            if key in _SKIP_HEADERS:
                await self.app(scope, receive, send)
                return
            if key == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif key == b"x-request-id":
                incoming = value.decode("latin-1")
            elif key == b"x-forwarded-for":
                forwarded = value.decode("latin-1")
        try:
            document = await route.load(scope["app"].state.services)
        except Exception:
            await self.app(scope, receive, send)  # the route answers (or explains) it
            return
        prepared = self._prepared.get(route.path)
        if prepared is None or prepared.document is not document:
            prepared = self._prepared[route.path] = _Prepared(route, document, self._extra)
        request_id = incoming if incoming and REQUEST_ID_PATTERN.match(incoming) else uuid4_hex()
        id_header = (b"x-request-id", request_id.encode())
        if not_modified(if_none_match, prepared.etag):
            status, headers, body = 304, [*prepared.unmodified, id_header], b""
        else:
            status, headers = 200, [*prepared.full, id_header]
            body = b"" if method == "HEAD" else prepared.body
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        client = scope.get("client")
        peer = client[0] if client else None
        self.recorder.record(
            method,
            route.path,
            status,
            time.perf_counter() - start,
            len(body),
            None,
            client_ip(peer, forwarded, self.trusted) if forwarded else peer,
            request_id,
            scope["path"],
        )
