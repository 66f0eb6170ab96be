"""``GET /v1/users/me`` answered in front of FastAPI when the identity cache holds the answer.

With the identity cache (ADR 0431) the bearer check needs no database round trip, and what is
left of a request's cost is the framework: the middleware chain, routing and dependency
resolution (the 2026-12-05 flame graph of ``me``). Like ``StaticDocuments`` (ADR 0420), this
layer answers the one common case itself and hands everything else to the full stack:

- answered here only: ``GET /v1/users/me`` with ``Authorization: Bearer`` and a token that
  verifies (the verified-token cache, ADR 0421) and is not DPoP-bound, no ``Origin`` (CORS
  decides), no body, and the session in this worker's identity cache (the bus healthy);
- traced or not: the head decision is taken here (``tracing.untraced_head``; the full stack
  keeps it when the request goes on). An unsampled request is answered in the constant
  unsampled context, a traced one (sampled root, or a ``traceparent`` to continue) gets its
  server span, ``GET /v1/users/me``, back-dated to when this layer began: the answer needs
  no I/O, so the span has no children on either path, and a root our head decision sampled
  gets it as a leaf handed to the span processor when it ends (``LeafServerSpan``), a
  continued ``traceparent`` as a live SDK span (``FrontSpan``, the sampler decides);
- everything else goes to the full stack, unchanged: a miss (which fills the cache there),
  every error (its problem+json comes from the route), DPoP (its proof is checked there on
  every request), HEAD, CORS;
- the response is the route's, byte for byte: ``UserOut`` serialised as FastAPI serialises a
  ``response_model``, the headers ``JSONResponse`` sets, then the security headers and
  ``X-Request-ID`` as ``RequestContextMiddleware`` adds them; the HTTP metrics, the in-flight
  gauge and the access line as it records them (template ``/v1/users/me``).

``tests/api/test_fast_me.py`` compares both paths.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from auth_service.accounts.schemas import UserOut
from auth_service.db.base import utcnow
from auth_service.keys.errors import InvalidToken
from auth_service.observability import metrics, tracing
from auth_service.security.dpop import presented
from auth_service.web.middleware import (
    REQUEST_ID_PATTERN,
    HttpRecorder,
    Network,
    client_ip,
    security_headers,
    uuid4_hex,
)

PATH = "/v1/users/me"
_FALL_THROUGH = frozenset({b"origin", b"content-length", b"transfer-encoding"})
_CONTENT_TYPE = (b"content-type", b"application/json")


class MeFastPath:
    """ASGI layer in front of ``app`` (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts: bool,
        trusted_proxies: tuple[Network, ...],
        recorder: HttpRecorder,
    ) -> None:
        self.app = app
        self.trusted = trusted_proxies
        self.recorder = recorder
        self.security = security_headers(PATH, hsts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        authorization = incoming = forwarded = None
        carried = False  # trace headers, found in the same pass (untraced_head's scan)
        for key, value in scope["headers"]:
            if key in _FALL_THROUGH:
                await self.app(scope, receive, send)
                return
            if key == b"authorization":
                authorization = value.decode("latin-1")
            elif key == b"x-request-id":
                incoming = value.decode("latin-1")
            elif key == b"x-forwarded-for":
                forwarded = value.decode("latin-1")
            elif key in tracing.TRACE_HEADERS:
                carried = True
        traced = not tracing.untraced_head(scope, carried)
        untraced = tracing.enter_unsampled()
        try:
            body = await self._answer(scope, authorization)
            if body is not None and not traced:
                # Answered in the unsampled context, its access line included (no ids there,
                # known by one identity check).
                await self._respond(send, scope, body, start, incoming, forwarded)
                return
        finally:
            tracing.leave(untraced)
        if body is None:
            await self.app(scope, receive, send)
            return
        # Traced: under its server span, back-dated to when this layer began. Nothing below
        # starts a span, so a root our head decision sampled has a leaf span (ADR 0432).
        began = time.time_ns() - int((time.perf_counter() - start) * 1e9)
        leaf = tracing.leaf_applies(scope)
        span = (tracing.LeafServerSpan if leaf else tracing.FrontSpan)(scope, "GET", PATH, began)
        try:
            await self._respond(send, scope, body, start, incoming, forwarded)
        finally:
            span.end(200)

    async def _respond(
        self,
        send: Send,
        scope: Scope,
        body: bytes,
        start: float,
        incoming: str | None,
        forwarded: str | None,
    ) -> None:
        """The 200 answer, counted and logged as the route's."""
        metrics.HTTP_IN_FLIGHT.inc()
        try:
            request_id = (
                incoming if incoming and REQUEST_ID_PATTERN.match(incoming) else uuid4_hex()
            )
            headers: list[Any] = [
                (b"content-length", str(len(body)).encode()),
                _CONTENT_TYPE,
                *self.security,
                (b"x-request-id", request_id.encode()),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            client = scope.get("client")
            peer = client[0] if client else None
            self.recorder.record(
                "GET",
                PATH,
                200,
                time.perf_counter() - start,
                len(body),
                None,
                client_ip(peer, forwarded, self.trusted) if forwarded else peer,
                request_id,
                PATH,
            )
        finally:
            metrics.HTTP_IN_FLIGHT.dec()

    async def _answer(self, scope: Scope, authorization: str | None) -> bytes | None:
        """The body of a 200 answer from the identity cache, or None (the full stack)."""
        found = presented(authorization)
        if found is None or found[0] != "bearer":
            return None
        services = scope["app"].state.services
        cache = services.sessions.identity_cache
        if cache is None or not cache.serving:
            return None
        try:
            claims = await services.access_tokens.verify(found[1])
        except InvalidToken:
            return None
        if claims.jkt is not None:
            return None
        identity = cache.get(claims.session_id, claims.subject, utcnow())
        if identity is None:
            return None
        return UserOut.of(identity).model_dump_json(by_alias=True).encode()
