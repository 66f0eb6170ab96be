"""Pure ASGI middleware: request context (with the security headers), body limit.

Pure ASGI (not BaseHTTPMiddleware) keeps the per-request cost to a few attribute lookups.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth_service.db.base import DEFAULT_TENANT_ID
from auth_service.observability import metrics, tracing
from auth_service.observability.logging import AccessLog, current_scope, log_access
from auth_service.web.errors import (
    BAD_REQUEST,
    INTERNAL,
    NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA,
    HTTPProblem,
    problem_response,
)

error_log = structlog.get_logger("auth_service.web")

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Probes and scrapes every few seconds would drown the access log (logging.access_log_probes).
_PROBE_PATHS = ("/health", "/metrics")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_DEFAULT_TENANT = str(DEFAULT_TENANT_ID)


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def client_ip(
    peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> str | None:
    """The client address, believing X-Forwarded-For only from trusted proxies.

    Walks the chain right to left and stops at the first hop that is not a trusted proxy;
    that hop is the client (everything further left could be forged by it).
    """
    if peer is None or not trusted or not forwarded_for:
        return peer

    def is_trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not is_trusted(peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return hops[0] if hops else peer


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


# Anything else a client sends as a method is counted as "other": a label value per invented
# method would let anyone create unbounded series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


# The HTTP metrics are counted in plain integers per process and folded into the Prometheus
# objects at scrape time (and by a timer, for the other workers' scrapes): a request pays for
# a few list increments instead of four locked metric updates (ADR 0435). False: not counted
# at all (the observability benchmark's "off" variant).
COUNT_HTTP = True


def _histogram_bounds(child: Any) -> tuple[float, ...]:
    return tuple(child._upper_bounds)


def _fold_histogram(child: Any, counts: list[int], folded: list[int]) -> None:
    # Same effect as one observe() per value: bucket i holds the values in (bound i-1, bound i].
    buckets = child._buckets
    for i, count in enumerate(counts):
        if count != folded[i]:
            buckets[i].inc(count - folded[i])
            folded[i] = count


class _RouteSeries:
    """The HTTP metrics of one (method, route) as plain cumulative counts, and the metric
    children (label lookups done once) they are folded into. Only the event loop's thread
    adds to the counts; a fold reads them and pushes the difference since the last fold, so a
    fold from another thread never loses an increment."""

    __slots__ = (
        "_children",
        "_folded",
        "duration",
        "duration_bounds",
        "duration_sum",
        "request_size",
        "request_size_sum",
        "requests",
        "response_size",
        "response_size_sum",
        "size_bounds",
    )

    def __init__(self, method: str, route: str) -> None:
        requests = [
            metrics.HTTP_REQUESTS.labels(method, route, status_class)
            for status_class in _STATUS_CLASSES
        ]
        duration = metrics.HTTP_DURATION.labels(method, route)
        response_size = metrics.HTTP_RESPONSE_SIZE.labels(route)
        request_size = metrics.HTTP_REQUEST_SIZE.labels(route)
        self._children = (requests, duration, response_size, request_size)
        self.duration_bounds = _histogram_bounds(duration)
        self.size_bounds = _histogram_bounds(response_size)
        self.requests = [0] * len(_STATUS_CLASSES)
        self.duration = [0] * len(self.duration_bounds)
        self.response_size = [0] * len(self.size_bounds)
        self.request_size = [0] * len(self.size_bounds)
        self.duration_sum = self.response_size_sum = self.request_size_sum = 0.0
        # What the metric objects already hold: requests, three histograms, three sums.
        self._folded = (
            [0] * len(self.requests),
            [0] * len(self.duration),
            [0] * len(self.response_size),
            [0] * len(self.request_size),
            [0.0, 0.0, 0.0],
        )

    def fold(self) -> None:
        requests, duration, response_size, request_size = self._children
        folded_requests, folded_duration, folded_response, folded_request, sums = self._folded
        for i, count in enumerate(self.requests):
            if count != folded_requests[i]:
                requests[i].inc(count - folded_requests[i])
                folded_requests[i] = count
        _fold_histogram(duration, self.duration, folded_duration)
        _fold_histogram(response_size, self.response_size, folded_response)
        _fold_histogram(request_size, self.request_size, folded_request)
        for i, (child, total) in enumerate(
            (
                (duration, self.duration_sum),
                (response_size, self.response_size_sum),
                (request_size, self.request_size_sum),
            )
        ):
            if total != sums[i]:
                child._sum.inc(total - sums[i])
                sums[i] = total


class _InFlight:
    """Requests being served by this process (the ``auth_http_requests_in_flight`` gauge,
    set from this count when the HTTP metrics are folded)."""

    count = 0
    _exported = 0

    @classmethod
    def fold(cls) -> None:
        if cls.count != cls._exported:
            cls._exported = cls.count
            metrics.HTTP_IN_FLIGHT.set(cls.count)


metrics.add_folder(_InFlight.fold)


class HttpRecorder:
    """The HTTP metrics and access line of one finished request, shared by the middleware
    and the static documents' front layer (web/static.py)."""

    def __init__(self, access_log: AccessLog) -> None:
        self.access_log = access_log
        # Bounded: methods are normalised and routes are templates (or "unmatched").
        self._series: dict[tuple[str, str], _RouteSeries] = {}
        self._fold_scheduled = False
        metrics.add_folder(self.fold)

    def fold(self) -> None:
        """Push the counts of this recorder's requests into the metric objects."""
        self._fold_scheduled = False
        for series in list(self._series.values()):
            series.fold()
        _InFlight.fold()

    def schedule_fold(self) -> None:
        """Fold within ``FOLD_SECONDS`` (once per interval, however many requests)."""
        if self._fold_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to fold later: fold now
            self.fold()
            return
        self._fold_scheduled = True
        loop.call_later(metrics.FOLD_SECONDS, self.fold)

    def series(self, method: str, template: str) -> _RouteSeries:
        series = self._series.get((method, template))
        if series is None:
            series = self._series[(method, template)] = _RouteSeries(method, template)
        return series

    def record(
        self,
        method: str,
        template: str,
        status: int,
        elapsed: float,
        response_bytes: int,
        length: bytes | None,
        ip: str | None,
        request_id: str,
        path: str,
    ) -> None:
        if method not in _METHODS:
            method = "other"
        if COUNT_HTTP:
            series = self._series.get((method, template)) or self.series(method, template)
            series.requests[min(max(status // 100, 1), 5) - 1] += 1
            series.duration[bisect_left(series.duration_bounds, elapsed)] += 1
            series.duration_sum += elapsed
            series.response_size[bisect_left(series.size_bounds, response_bytes)] += 1
            series.response_size_sum += response_bytes
            if length is not None and length.isdigit():
                size = int(length)
                series.request_size[bisect_left(series.size_bounds, size)] += 1
                series.request_size_sum += size
            if not self._fold_scheduled:
                self.schedule_fold()
        access = self.access_log
        if access.enabled and (access.probes or not path.startswith(_PROBE_PATHS)):
            log_access(
                (
                    method,
                    template,
                    status,
                    round(elapsed * 1000, 2),
                    ip,
                    request_id,
                    _DEFAULT_TENANT,
                )
            )


class RequestContextMiddleware:
    """Request id (honouring X-Request-ID), client IP, access log line, HTTP metrics and,
    with ``security_headers``, the security headers of every response (one layer and one
    ``send`` wrapper for both: they were two middlewares next to each other, ADR 0420)."""

    def __init__(
        self,
        app: ASGIApp,
        trusted_proxies: tuple[Network, ...] = (),
        access_log: AccessLog | None = None,
        *,
        security_headers: bool = False,
        hsts: bool = False,
    ) -> None:
        self.app = app
        self.trusted = trusted_proxies
        self.recorder = HttpRecorder(access_log or AccessLog())
        self.security_headers = security_headers
        self.hsts = hsts

    @property
    def access_log(self) -> AccessLog:
        return self.recorder.access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = forwarded = length = None
        for key, value in scope.get("headers", ()):
            if key == b"x-request-id":
                incoming = value.decode("latin-1")
            elif key == b"x-forwarded-for":
                forwarded = value.decode("latin-1")
            elif key == b"content-length":
                length = value
        request_id, ip = identify(scope, incoming, forwarded, self.trusted)
        context_tokens = structlog.contextvars.bind_contextvars(
            request_id=request_id, tenant=_DEFAULT_TENANT
        )
        scope_token = current_scope.set(scope)
        status = 500
        response_bytes = 0
        start = time.perf_counter()
        _InFlight.count += 1
        if not self.recorder._fold_scheduled:
            self.recorder.schedule_fold()
        request_id_header = (b"x-request-id", request_id.encode())
        security = security_headers(scope["path"], self.hsts) if self.security_headers else None

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_bytes
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = list(message.get("headers", ()))
                if security is not None:
                    present = {k.lower() for k, _ in headers}
                    headers.extend(h for h in security if h[0] not in present)
                headers.append(request_id_header)
                message["headers"] = headers
            elif message["type"] == "http.response.body":
                response_bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            _InFlight.count -= 1
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            if method not in _METHODS:
                method = "other"
            tracing.name_server_span(method, template)
            self.recorder.record(
                method,
                template,
                status,
                time.perf_counter() - start,
                response_bytes,
                length,
                ip,
                request_id,
                scope["path"],
            )
            structlog.contextvars.reset_contextvars(**context_tokens)
            current_scope.reset(scope_token)


def identify(
    scope: Scope, incoming: str | None, forwarded: str | None, trusted: tuple[Network, ...]
) -> tuple[str, str | None]:
    """The request id (an acceptable incoming ``X-Request-ID``, or new) and the client
    address, also kept in the scope's state for ``get_context``."""
    request_id = incoming if incoming and REQUEST_ID_PATTERN.match(incoming) else uuid4_hex()
    client = scope.get("client")
    peer = client[0] if client else None
    ip = client_ip(peer, forwarded, trusted) if forwarded else peer
    state = scope.setdefault("state", {})
    state["request_id"] = request_id
    state["client_ip"] = ip
    return request_id, ip


def uuid4_hex() -> str:
    """A random request id, as ``uuid.uuid4().hex`` is, without building the UUID object."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


# DELETE included: a DELETE that carries a body (DELETE /v1/users/me, the password) is held to
# the same rule; one without a body is never checked.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The JSON API: a body sent to it must be JSON (415 otherwise), and its OpenAPI operations say so.
JSON_API_PREFIX = "/v1/"


class _StartTracking:
    """A ``send`` that remembers whether the response has started, so a middleware knows
    whether it may still answer with its own problem response."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class UnhandledErrorMiddleware:
    """Turn an unexpected exception into a logged 500 problem, inside the other middleware.

    Starlette would otherwise answer from its outermost layer, without our request id and
    security headers, and re-raise so the server logs a second traceback.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = _StartTracking(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            error_log.error(
                "unhandled_exception",
                error=type(exc).__name__,
                path=scope.get("path"),
                exc_info=exc,
            )
            if tracked.started:
                raise
            response = problem_response(INTERNAL, scope.get("path"))
            await response(scope, receive, send)


class BodyTooLarge(HTTPProblem):
    """Raised from ``receive`` while the app reads a streamed body. The app's handler answers
    it (with the limit in ``detail``) when the route was reading; the middleware answers it
    when the app let it through."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(PAYLOAD_TOO_LARGE, f"limit is {max_bytes} bytes")


class BodyLimitMiddleware:
    """Refuse bodies over the limit with 413 (by Content-Length or while streaming), and
    bodies that are not JSON with 415 under ``JSON_API_PREFIX``: the JSON API speaks nothing
    else. Paths outside it (hosted pages and OAuth2 endpoints, which post forms) are left to
    their routes.

    ``streams`` names the few ``POST`` routes that read a streamed body of another media
    type (``POST /v1/admin/users:import``, NDJSON): path -> (media type, byte limit). Only
    that media type is accepted there, under its own limit; every other route keeps JSON and
    ``max_bytes``."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, streams: dict[str, tuple[str, int]] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streams = streams or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        refusal = None
        streamed = scope.get("path", "") in self.streams
        stream = self.streams[scope["path"]] if streamed and scope.get("method") == "POST" else None
        max_bytes = stream[1] if stream else self.max_bytes
        if length is not None and not length.isdigit():
            refusal = problem_response(BAD_REQUEST, scope.get("path"), "invalid Content-Length")
        elif length is not None and int(length) > max_bytes:
            refusal = problem_response(
                PAYLOAD_TOO_LARGE, scope.get("path"), f"limit is {max_bytes} bytes"
            )
        elif stream is not None:
            media = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
            if media != stream[0]:
                refusal = problem_response(
                    UNSUPPORTED_MEDIA, scope.get("path"), f"send the body as {stream[0]}"
                )
        elif (
            not streamed  # another method on a streamed route: the router answers 405
            and scope.get("method") in _BODY_METHODS
            and scope.get("path", "").startswith(JSON_API_PREFIX)
            and ((length is not None and length != "0") or _header(scope, b"transfer-encoding"))
        ):
            media = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
            if media != "application/json" and not media.endswith("+json"):
                refusal = problem_response(
                    UNSUPPORTED_MEDIA, scope.get("path"), "send the body as application/json"
                )
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        received = 0
        tracked = _StartTracking(send)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge(max_bytes)
            return message

        try:
            await self.app(scope, limited_receive, tracked)
        except BodyTooLarge as exc:
            if tracked.started:
                raise
            response = problem_response(exc.problem, scope.get("path"), exc.problem_detail)
            await response(scope, receive, send)


class NoWebSocketMiddleware:
    """The service has no WebSocket endpoint: an upgrade request gets the 404 problem as an
    HTTP denial response (the ASGI ``websocket.http.response`` extension) rather than the
    server's bare 403, or a close where the server cannot send one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        await receive()  # websocket.connect
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})
            return
        # RequestContextMiddleware adds them to HTTP scopes only: the denial carries them itself.
        response = problem_response(
            NOT_FOUND,
            scope.get("path"),
            "no WebSocket endpoint here",
            headers={k.decode(): v.decode() for k, v in API_SECURITY_HEADERS},
        )

        async def as_denial(message: Message) -> None:
            await send({**message, "type": "websocket." + message["type"]})

        await response({**scope, "type": "http"}, receive, as_denial)


class HeadAsGetMiddleware:
    """HEAD is answered as GET without the body (RFC 9110 section 9.3.2), on every route.

    FastAPI routes list only the methods they declare, so HEAD on a GET route was a 405. The
    app below sees a GET (fast paths included) in a copy of the scope; the server keeps
    seeing HEAD, frames the response as one (uvicorn sends no body for it), and the headers,
    ``Content-Length`` included, are those of the GET. HEAD where GET is not allowed is
    still a 405.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        as_get = {**scope, "method": "GET"}

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(as_get, receive, without_body)
        finally:
            # Metrics and the access log name the matched route's template.
            if "route" in as_get:
                scope["route"] = as_get["route"]


_API_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"interest-cohort=()"),
]
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
# Every API response's security headers, also for the 400 the HTTP parser answers (protocol.py).
API_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (*_API_HEADERS, _API_CSP)
# The interactive docs (web/docs.py) load Swagger UI from this origin only, with no inline
# script or style; its icons are data: URIs in its stylesheet.
_DOCS_CSP = (
    b"content-security-policy",
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
)


HSTS_HEADER = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
_API_SECURITY = [*_API_HEADERS, _API_CSP]
_API_SECURITY_HSTS = [*_API_SECURITY, HSTS_HEADER]
_DOCS_SECURITY = [*_API_HEADERS, _DOCS_CSP]
_DOCS_SECURITY_HSTS = [*_DOCS_SECURITY, HSTS_HEADER]


def security_headers(path: str, hsts: bool) -> list[tuple[bytes, bytes]]:
    """The security headers a response to ``path`` carries (unless it set one itself): the
    API's everywhere, the docs' CSP under ``/docs``, HSTS when the public URL is https."""
    if path == "/docs" or path.startswith("/docs/"):
        return _DOCS_SECURITY_HSTS if hsts else _DOCS_SECURITY
    return _API_SECURITY_HSTS if hsts else _API_SECURITY
