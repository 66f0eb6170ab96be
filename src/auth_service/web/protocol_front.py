"""The client-authenticated protocol endpoints (token, introspection, revocation), answered in
front of FastAPI (ADR 0760), as ``web.static`` answers the static documents (ADR 0420).

A machine client's ``POST /oauth2/token`` paid for the whole stack: thirteen ASGI layers,
FastAPI's routing and dependency resolution, Starlette's form parser and ``JSONResponse``.
``ProtocolFront`` sits in front of all of it and calls the same provider methods
(``OAuthService.token``, ``introspect``, ``revoke``) with the same ``EndpointRequest``; the
work of every grant and of client authentication is unchanged. It does itself what the layers
it skips would do for these requests:

- the form body parsed as Starlette parses it (``unquote_plus`` of name and value);
- the request context (client address believing ``X-Forwarded-For`` from trusted proxies only,
  ``User-Agent``, request id), the structlog context and the log lines' route;
- every failure in the RFC's form (``oauth.routes.failure``, the function ``OAuthRoute``
  uses), the route's headers (``Cache-Control: no-store``, ``Pragma``, challenges);
- the security headers and ``X-Request-ID``, the HTTP metrics (in flight too) and the access
  line, as ``RequestContextMiddleware`` records them.

What it does not answer in exactly today's way goes to the full stack, body included: a
method other than POST, an ``Origin`` header (CORS decides), no or a non-numeric
``Content-Length``, ``Transfer-Encoding``, a body over the limit (413 decides), another media
type (the route's message), a body with any byte outside the plain form alphabet or a pair
without exactly one ``=`` (Starlette's parser decides), the services not started.
``tests/api/oauth/test_protocol_front.py`` compares both faces.

Traced or not, as the full stack would: the head decision is taken here
(``tracing.untraced_head``, kept in the scope for the full stack when a request goes on). An
unsampled request runs in the constant unsampled context (its statements start no span); a
traced one (a sampled root, or a ``traceparent`` to continue) runs under its server span,
``POST /oauth2/token`` and so on, with the route's attributes and its statements, Redis calls
and signing as children (``tracing.FrontSpan``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote_plus

import structlog
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth_service.audit.context import RequestContext
from auth_service.db.base import DEFAULT_TENANT_ID
from auth_service.oauth import rfc8414, routes
from auth_service.oauth.request import EndpointRequest, Params
from auth_service.oauth.service import OAuthService
from auth_service.observability import metrics, tracing
from auth_service.observability.logging import current_scope
from auth_service.web.middleware import (
    API_SECURITY_HEADERS,
    HSTS_HEADER,
    HttpRecorder,
    Network,
    identify,
)

# The bodies answered here: what machine clients send. Larger ones go to the full stack.
MAX_FAST_BODY = 16 * 1024
MAX_FIELDS = 64
# Bytes whose meaning is the same to Starlette's parser and to a split on "&" and "=" (no
# ";", no bytes outside ASCII): anything else is parsed by Starlette.
_PLAIN_FORM = re.compile(rb"[A-Za-z0-9._~%+=&:/*-]+")
_FORM = routes.FORM.encode()
_TENANT = str(DEFAULT_TENANT_ID)
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_NO_STORE = [(k.lower().encode(), v.encode()) for k, v in routes.NO_STORE.items()]
_JSON = (b"content-type", b"application/json")

Handler = Callable[[OAuthService, EndpointRequest], Awaitable[dict[str, Any] | None]]


async def _token(oauth: OAuthService, request: EndpointRequest) -> dict[str, Any] | None:
    return await oauth.token(request)


async def _introspect(oauth: OAuthService, request: EndpointRequest) -> dict[str, Any] | None:
    return await oauth.introspect(request)


async def _revoke(oauth: OAuthService, request: EndpointRequest) -> dict[str, Any] | None:
    await oauth.revoke(request)
    return None  # 200 without a body


HANDLERS: dict[str, Handler] = {
    rfc8414.TOKEN: _token,
    rfc8414.INTROSPECT: _introspect,
    rfc8414.REVOKE: _revoke,
}


class _Route:
    """What the log lines' ``route`` and the metrics read of a matched route."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


_ROUTES = {path: _Route(path) for path in HANDLERS}


def parse_form(body: bytes) -> list[tuple[str, str]] | None:
    """The pairs of a plain form body, as Starlette's parser gives them; None when the body
    is not plain (the full stack parses it)."""
    if not _PLAIN_FORM.fullmatch(body):
        return None
    pieces = body.split(b"&")
    if len(pieces) > MAX_FIELDS:
        return None
    pairs = []
    for piece in pieces:
        name, eq, value = piece.partition(b"=")
        if not name or not eq or b"=" in value:
            return None
        pairs.append((unquote_plus(name.decode("ascii")), unquote_plus(value.decode("ascii"))))
    return pairs


class ProtocolFront:
    """ASGI layer in front of the FastAPI stack ``app`` (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        hsts: bool,
        trusted_proxies: tuple[Network, ...],
        recorder: HttpRecorder,
    ) -> None:
        self.app = app
        self.max_body = min(max_body_bytes, MAX_FAST_BODY)
        self.trusted = trusted_proxies
        self.recorder = recorder
        self._security: list[tuple[bytes, bytes]] = list(API_SECURITY_HEADERS)
        if hsts:
            self._security.append(HSTS_HEADER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = HANDLERS.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        length = media = authorization = agent = incoming = forwarded = None
        dpop: list[str] = []
        for key, value in scope["headers"]:
            if key == b"content-length":
                length = value
            elif key == b"content-type":
                media = value
            elif key == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif key == b"dpop":
                dpop.append(value.decode("latin-1"))
            elif key == b"user-agent":
                if agent is None:
                    agent = value.decode("latin-1")
            elif key == b"x-request-id":
                incoming = value.decode("latin-1")
            elif key == b"x-forwarded-for":
                forwarded = value.decode("latin-1")
            elif key == b"origin" or key == b"transfer-encoding":
                await self.app(scope, receive, send)
                return
        services = getattr(scope["app"].state, "services", None)
        if (
            length is None
            or not length.isdigit()
            or int(length) > self.max_body
            or media is None
            or media.split(b";", 1)[0].strip().lower() != _FORM
            or services is None
        ):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        traced_from = None if tracing.untraced_head(scope) else time.time_ns()
        body, disconnected = await _read(receive)
        pairs = None if disconnected else parse_form(body)
        if pairs is None and not disconnected:
            await self.app(scope, _replay(body, receive), send)
            return
        request_id, ip = identify(scope, incoming, forwarded, self.trusted)
        scope["route"] = _ROUTES[path]
        context_tokens = structlog.contextvars.bind_contextvars(
            request_id=request_id, tenant=_TENANT
        )
        scope_token = current_scope.set(scope)
        span = None if traced_from is None else tracing.FrontSpan(scope, "POST", path, traced_from)
        unsampled = tracing.enter_unsampled() if traced_from is None else None
        in_flight = metrics.HTTP_IN_FLIGHT
        in_flight.inc()
        status = 500
        content = b""
        oauth: OAuthService = services.oauth
        try:
            try:
                if disconnected:
                    raise ClientDisconnect
                assert pairs is not None
                request = EndpointRequest(
                    Params.of(pairs),
                    authorization,
                    RequestContext(
                        ip=ip, user_agent=agent[:512] if agent else None, request_id=request_id
                    ),
                    tuple(dpop),
                )
                answer = await handler(oauth, request)
                status, headers = 200, list(_NO_STORE)
                if answer is None:
                    headers.append((b"content-length", b"0"))
                else:
                    content = _ENCODER.encode(answer).encode()
                    headers += [(b"content-length", str(len(content)).encode()), _JSON]
            except Exception as exc:
                status, answer, named = routes.failure(path, oauth.issuer, exc)
                content = _ENCODER.encode(answer).encode()
                headers = [
                    (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in named.items()
                ]
                headers += [(b"content-length", str(len(content)).encode()), _JSON]
            headers += self._security
            headers.append((b"x-request-id", request_id.encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": content})
        finally:
            in_flight.dec()
            self.recorder.record(
                "POST",
                path,
                status,
                time.perf_counter() - start,
                len(content),
                length,
                ip,
                request_id,
                path,
            )
            tracing.leave(unsampled)
            if span is not None:
                span.end(status)
            structlog.contextvars.reset_contextvars(**context_tokens)
            current_scope.reset(scope_token)


async def _read(receive: Receive) -> tuple[bytes, bool]:
    """The whole body, and whether the client went away before sending it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the full stack: the body already read, then the server's messages."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
