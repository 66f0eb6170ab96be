"""OpenTelemetry tracing, configured only by the standard ``OTEL_*`` environment variables.

Tracing is on when an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) and off otherwise; ``OTEL_SDK_DISABLED=true`` or
``OTEL_TRACES_EXPORTER=none`` turn it off too. Sampling (``OTEL_TRACES_SAMPLER``,
``OTEL_TRACES_SAMPLER_ARG``), batching (``OTEL_BSP_*``), resource attributes
(``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), exporter headers and timeouts and the
propagators (``OTEL_PROPAGATORS``, W3C ``traceparent`` by default) are read by the SDK itself.

Spans: the HTTP server (FastAPI), SQLAlchemy statements, Redis commands, outgoing httpx
requests, and the manual spans of this module (password hashing, token signing, mail, jobs).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, TypeVar

import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth_service import __version__

log = structlog.get_logger(__name__)

T = TypeVar("T")

SERVICE_NAME = "auth-service"
# Probes and scrapes would be most of the traces and none of the interest.
EXCLUDED_URLS = "/health,/metrics"

# FastAPI >= 0.16x traces natively (server and per-operation spans) as soon as a tracer
# provider exists; ServerSpanMiddleware is our one server span, so that is switched off.
# Older FastAPI versions keep unknown constructor arguments in ``app.extra`` and ignore it.
FASTAPI_TELEMETRY: Any = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}

_tracer = trace.get_tracer("auth_service", __version__)
_server_tracer = trace.get_tracer("auth_service.http", __version__)
_provider: Any = None
# The provider's one span processor (the batch processor and its OTLP exporter), to which a
# ``LeafServerSpan`` hands its finished span.
_processor: Any = None
_instrumented_globally = False
# The share of root requests (no incoming trace headers) that get a server span, decided by
# ServerSpanMiddleware before any span exists; None: the sampler decides as usual.
_root_rate: float | None = None
_forced = threading.local()

# The context an unsampled request runs in (ADR 0420): one process-wide parent that is not
# sampled, so no span is built per request and the spans started inside it (statement, Redis,
# hashing, signing) are dropped by the parent-based sampler as before. Its ids are never
# logged or propagated (``current_traceparent``). Once tracing is configured it also
# suppresses the library instrumentations (``_suppressing``): under it a Redis command or an
# outgoing httpx request builds no span at all (an instrumented Redis command cost ~30 µs
# more without it) and injects no ``traceparent`` naming this constant trace.
_UNSAMPLED_TRACE_ID = secrets.randbits(127) | 1
_UNSAMPLED_SPAN = NonRecordingSpan(
    SpanContext(
        trace_id=_UNSAMPLED_TRACE_ID,
        span_id=secrets.randbits(63) | 1,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.DEFAULT),
    )
)
_UNSAMPLED_CONTEXT = trace.set_span_in_context(_UNSAMPLED_SPAN)


def _suppressing() -> otel_context.Context:
    """The unsampled context with the instrumentations' switch off (their public helper)."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        return trace.set_span_in_context(_UNSAMPLED_SPAN, otel_context.get_current())


def endpoint_configured(environ: dict[str, str] | None = None) -> bool:
    """Whether the ``OTEL_*`` variables ask for trace export."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if exporters in ("none", ""):
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )


def enabled() -> bool:
    return _provider is not None


def configure_tracing() -> bool:
    """Install the SDK tracer provider and the library instrumentations, once per process.

    Returns whether tracing is on. Safe to call again (tests, several apps in one process).
    """
    global _provider, _instrumented_globally
    if _provider is not None:
        return True
    if not endpoint_configured():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if protocol and protocol != "http/protobuf":
        log.warning("otel_protocol_unsupported", protocol=protocol, using="http/protobuf")
    resource = Resource.create({"service.version": __version__})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    global _root_rate
    from opentelemetry.sdk.trace.sampling import _get_from_env_or_default

    # The sampler of OTEL_TRACES_SAMPLER(_ARG), behind one that honours the middleware's head
    # decision (HeadDecided); the middleware decides roots itself when the rate is known.
    provider = TracerProvider(
        resource=_hashed_once(resource), sampler=_head_decided(_get_from_env_or_default())
    )
    _root_rate = root_sampling_rate(os.environ)
    processor = BatchSpanProcessor(OTLPSpanExporter())
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _provider = provider
    global _processor
    _processor = processor
    global _UNSAMPLED_CONTEXT
    _UNSAMPLED_CONTEXT = _suppressing()
    if not _instrumented_globally:
        RedisInstrumentor().instrument(tracer_provider=provider)
        HTTPXClientInstrumentor().instrument(tracer_provider=provider)
        _instrumented_globally = True
    log.info("tracing_enabled", service=resource.attributes.get("service.name"))
    return True


def _hashed_once(resource: Any) -> Any:
    """``resource`` with its hash computed once. The OTLP encoder groups every exported span
    by its resource (a dict keyed by it), and the SDK's ``Resource`` hashes by serialising
    its attributes to sorted JSON each time: ~10 µs of the export thread's CPU per span
    (bench/README.md, "Tracing interleaved").
    A resource never changes after the provider is built."""
    from opentelemetry.sdk.resources import Resource

    class HashedOnce(Resource):
        def __init__(self, attributes: Any, schema_url: str | None = None) -> None:
            super().__init__(attributes, schema_url)
            self._hash = Resource.__hash__(self)

        def __hash__(self) -> int:
            return self._hash

    return HashedOnce(resource.attributes, resource.schema_url)


def root_sampling_rate(env: MutableMapping[str, str]) -> float | None:
    """The probability that a root span is sampled under ``OTEL_TRACES_SAMPLER(_ARG)``, for the
    samplers whose root decision is a plain probability; None for any other sampler."""
    name = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    if name in ("always_on", "parentbased_always_on"):
        return 1.0
    if name in ("always_off", "parentbased_always_off"):
        return 0.0
    if name in ("traceidratio", "parentbased_traceidratio"):
        try:
            rate = float(env.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))
        except ValueError:
            return 1.0  # what the SDK falls back to
        return min(max(rate, 0.0), 1.0)
    return None


def _head_decided(delegate: Any) -> Any:
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    class HeadDecided(Sampler):
        """The configured sampler, except for a server span the middleware already decided
        to sample (its decision is the head decision of the trace)."""

        def should_sample(  # type: ignore[no-untyped-def]
            self,
            parent_context,
            trace_id,
            name,
            kind=None,
            attributes=None,
            links=None,
            trace_state=None,
        ) -> SamplingResult:
            if getattr(_forced, "on", False):
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, None)
            return delegate.should_sample(  # type: ignore[no-any-return]
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"HeadDecided{{{delegate.get_description()}}}"

    return HeadDecided()


class _HeaderGetter(Getter[MutableMapping[str, Any]]):
    """Reads W3C trace headers straight from the ASGI header list (no dict is built)."""

    def get(self, carrier: MutableMapping[str, Any], key: str) -> list[str] | None:
        wanted = key.encode()
        values = [v.decode("latin-1") for k, v in carrier.get("headers", ()) if k == wanted]
        return values or None

    def keys(self, carrier: MutableMapping[str, Any]) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier.get("headers", ())]


_GETTER = _HeaderGetter()
_PROBES = tuple(EXCLUDED_URLS.split(","))


_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})
TRACE_HEADERS = _TRACE_HEADERS  # the headers that make a request continue a trace


# The scope key of a head decision taken by a layer in front of the app (``untraced_head``),
# honoured by ServerSpanMiddleware: one roll per request.
HEAD_DECISION = "auth_service.trace_head"


def _has_trace_headers(scope: MutableMapping[str, Any]) -> bool:
    for key, _ in scope.get("headers", ()):  # noqa: SIM110 - any() over a generator: 2.4x
        if key in _TRACE_HEADERS:
            return True
    return False


def _roll(rate: float) -> bool:
    """Whether a root is sampled at ``rate``."""
    return not (rate <= 0.0 or (rate < 1.0 and random.random() >= rate))  # noqa: S311 - sampling


def untraced_head(scope: MutableMapping[str, Any], carried: bool | None = None) -> bool:
    """For a layer that answers in front of the app (the ``me`` fast path): whether this
    request may be answered without a server span — tracing is off, or the request is a root
    (no trace headers) that head sampling does not sample. The decision is kept in the scope,
    so when the layer hands the request on, ServerSpanMiddleware takes it instead of rolling
    again. False for a sampled root, a request with trace headers, or any root under a
    sampler without a plain root rate: the layer answers it under a ``FrontSpan``, or hands
    it on to the full stack's span. ``carried``: whether the request has trace headers
    (``TRACE_HEADERS``), for a layer that has looked at its headers already; None: looked
    up here."""
    if _provider is None:
        return True
    decided = scope.get(HEAD_DECISION)
    if decided is None:
        if carried is None:
            carried = _has_trace_headers(scope)
        if _root_rate is None or carried:
            return False
        decided = scope[HEAD_DECISION] = _roll(_root_rate)
    return not decided


def _server_attributes(scope: Scope, method: str) -> dict[str, Any]:
    return {
        "http.request.method": method,
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }


class FrontSpan:
    """The SERVER span of a request that a layer in front of the app answers itself once
    ``untraced_head`` said it is traced: a sampled root (its head decision is in the scope)
    or a request with trace headers (the parent-based sampler decides, as in
    ``ServerSpanMiddleware``). Named after the route at once, made current until ``end`` (the
    statements and Redis calls of the answer are its children); ``start_ns`` back-dates it to
    when the layer began (``time.time_ns()``), for work done before it was known to be
    answered in front. Only for ``untraced_head(scope) is False``: tracing is on."""

    __slots__ = ("_span", "_token")

    def __init__(self, scope: Scope, method: str, route: str, start_ns: int | None = None) -> None:
        name = f"{method} {route}"
        parent = None
        if _has_trace_headers(scope):
            parent = propagate.extract(scope, getter=_GETTER)
            span = _server_tracer.start_span(
                name, context=parent, kind=SpanKind.SERVER, start_time=start_ns
            )
        else:
            _forced.on = scope.get(HEAD_DECISION) is True
            try:
                span = _server_tracer.start_span(name, kind=SpanKind.SERVER, start_time=start_ns)
            finally:
                _forced.on = False
        if span.is_recording():
            attributes = _server_attributes(scope, method)
            attributes["http.route"] = route
            span.set_attributes(attributes)
        self._span = span
        self._token = otel_context.attach(trace.set_span_in_context(span, parent))

    def end(self, status: int) -> None:
        """The response's status on the span, then the span ended and no longer current."""
        span = self._span
        try:
            if span.is_recording():
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(StatusCode.ERROR)
        finally:
            span.end()
            otel_context.detach(self._token)


class LeafServerSpan:
    """The SERVER span of a sampled root request that a layer answers in front of the app
    without any child span (the ``me`` fast path's answer from the identity cache): its ids,
    times and attributes kept as plain values and handed to the span processor as one
    finished ``ReadableSpan`` at ``end``, instead of a live SDK span. A live span costs the
    event loop ~130 µs in a serving worker (the sampler, the ``Span`` with its locks and
    bounded collections, the attribute checks, the copy at ``end``), a sampled request with
    this ~50 (8 µs against 56 in a loop; ADR 0432 amendment, bench/README.md "Tracing
    interleaved"); what is exported is the same span:
    the provider's resource and id generator, this module's instrumentation scope, the
    attributes ``FrontSpan`` gives. While it is open a non-recording span with its ids is
    current, so the access line and log lines carry them. Only where ``leaf_applies``: our
    own head decision sampled the root (no trace headers, so no parent to continue), and
    the service's processor exists; anything else takes ``FrontSpan``."""

    __slots__ = ("_attributes", "_context", "_name", "_start", "_token")

    def __init__(self, scope: Scope, method: str, route: str, start_ns: int) -> None:
        ids = _provider.id_generator
        self._context = SpanContext(
            trace_id=ids.generate_trace_id(),
            span_id=ids.generate_span_id(),
            is_remote=False,
            trace_flags=_SAMPLED,
        )
        self._name = f"{method} {route}"
        self._start = start_ns
        attributes = _server_attributes(scope, method)
        attributes["http.route"] = route
        self._attributes = attributes
        self._token = otel_context.attach(
            trace.set_span_in_context(NonRecordingSpan(self._context))
        )

    def end(self, status: int) -> None:
        """The finished span, with the response's status, to the processor; no longer
        current."""
        try:
            readable, scope = _leaf_parts()
            self._attributes["http.response.status_code"] = status
            _processor.on_end(
                readable(
                    name=self._name,
                    context=self._context,
                    parent=None,
                    resource=_provider.resource,
                    attributes=self._attributes,
                    kind=SpanKind.SERVER,
                    status=_ERROR if status >= 500 else _UNSET,
                    instrumentation_scope=scope,
                    start_time=self._start,
                    end_time=time.time_ns(),
                )
            )
        finally:
            otel_context.detach(self._token)


def leaf_applies(scope: MutableMapping[str, Any]) -> bool:
    """Whether a traced request (``untraced_head`` said False) may take ``LeafServerSpan``:
    a root our head decision sampled, with the service's processor configured."""
    return scope.get(HEAD_DECISION) is True and _processor is not None


_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSET = Status(StatusCode.UNSET)
_ERROR = Status(StatusCode.ERROR)
_leaf_cache: list[tuple[Any, Any]] = []


def _leaf_parts() -> tuple[Any, Any]:
    """The SDK's ``ReadableSpan`` and the instrumentation scope of ``_server_tracer``'s spans
    (``auth_service.http``), imported once the first leaf span ends (the SDK is not imported
    while tracing is off)."""
    if not _leaf_cache:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        _leaf_cache.append((ReadableSpan, InstrumentationScope("auth_service.http", __version__)))
    return _leaf_cache[0]


def enter_unsampled() -> object | None:
    """Make the one unsampled context current (what a request that is not sampled runs in:
    a statement or Redis call under it starts no root span of its own); None, and nothing
    done, while tracing is off. Undo with ``leave``."""
    return otel_context.attach(_UNSAMPLED_CONTEXT) if _provider is not None else None


def leave(token: object | None) -> None:
    if token is not None:
        otel_context.detach(token)  # type: ignore[arg-type]


class ServerSpanMiddleware:
    """One SERVER span per HTTP request, continuing an incoming W3C ``traceparent``.

    A few lines on the OpenTelemetry API instead of the contrib ASGI/FastAPI middlewares:
    those build URL, header and host attributes for every request before the sampler runs,
    which cost ~45% of the throughput of a cheap endpoint at 10% sampling
    (docs/adr/0401-own-server-span-middleware.md). Attributes are set only on sampled spans;
    the propagators run only when the request carries trace headers; and the span is made
    current with one ``attach`` instead of the API's three nested context managers (together
    11 → 5 µs for a request that is not sampled, bench/observability/README.md).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_PROBES):
            await self.app(scope, receive, send)
            return
        parent = None
        method = scope["method"]
        if _has_trace_headers(scope):
            parent = propagate.extract(scope, getter=_GETTER)
            current = _server_tracer.start_span(method, context=parent, kind=SpanKind.SERVER)
        else:
            # The head decision: taken by a layer in front (untraced_head), or rolled here.
            decided = scope.get(HEAD_DECISION)
            if decided is None and _root_rate is not None:
                decided = _roll(_root_rate)
            if decided is False:
                # Not sampled: no span at all, one constant unsampled parent (ADR 0420).
                token = otel_context.attach(_UNSAMPLED_CONTEXT)
                try:
                    await self.app(scope, receive, send)
                finally:
                    otel_context.detach(token)
                return
            _forced.on = decided is True
            try:
                current = _server_tracer.start_span(method, kind=SpanKind.SERVER)
            finally:
                _forced.on = False
        token = otel_context.attach(trace.set_span_in_context(current, parent))
        try:
            if not current.is_recording():
                await self.app(scope, receive, send)
                return
            current.set_attributes(_server_attributes(scope, method))

            async def send_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    current.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        current.set_status(StatusCode.ERROR)
                await send(message)

            try:
                await self.app(scope, receive, send_status)
            except BaseException as exc:
                current.record_exception(exc)
                current.set_status(StatusCode.ERROR, type(exc).__name__)
                raise
        finally:
            current.end()
            otel_context.detach(token)


def instrument_app(app: Any) -> None:
    """Server spans for the public app. Added last: the outermost user middleware."""
    if _provider is not None:
        app.add_middleware(ServerSpanMiddleware)


def name_server_span(method: str, route: str) -> None:
    """Name the current server span after the route template (``POST /v1/auth/login``)."""
    current = trace.get_current_span()
    if current.is_recording():
        current.update_name(f"{method} {route}")
        current.set_attribute("http.route", route)


_db_tracer = trace.get_tracer("auth_service.db", __version__)


class StatementSpans:
    """A CLIENT span per SQL statement of one engine, started only inside a recording span.

    Used from the engine's own cursor events (observability/db.py) instead of the contrib
    SQLAlchemy instrumentation, which works out URL, database and operation attributes and
    starts a span for every statement before it knows whether the request is sampled: on
    ``GET /v1/users/me`` that made tracing at 10% cost +22% of the request's CPU
    (bench/observability/README.md). A statement of an unsampled request costs one check
    here; its span would be dropped anyway (the sampler follows the parent).
    Statement text is recorded without parameters.
    """

    def __init__(self, engine: Any) -> None:
        url = engine.url
        self.system = str(engine.dialect.name)
        self.database = str(url.database or "") if self.system != "sqlite" else ""
        self.attributes: dict[str, str | int] = {"db.system": self.system}
        if self.database:
            self.attributes["db.name"] = self.database
        if url.host:
            self.attributes["server.address"] = str(url.host)
        if url.port:
            self.attributes["server.port"] = int(url.port)

    def start(self, statement: str) -> Span | None:
        if _unsampled_now() or not trace.get_current_span().is_recording():
            return None
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        name = f"{operation} {self.database}".strip() or self.system
        attributes = {
            **self.attributes,
            "db.operation": operation,
            "db.statement": statement,
        }
        return _db_tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)

    @staticmethod
    def fail(span: Span, error: BaseException) -> None:
        span.record_exception(error)
        span.set_status(StatusCode.ERROR, type(error).__name__)
        span.end()


def statement_spans(engine: Any) -> StatementSpans | None:
    """Statement spans for this engine when tracing is on (None when off: no cost at all)."""
    return StatementSpans(engine) if _provider is not None else None


def shutdown_tracing() -> None:
    """Flush queued spans (graceful shutdown)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=5000)


def _unsampled_now() -> bool:
    """Whether the current context is the one unsampled context (ADR 0420), in which nothing
    started can be recorded: one identity check, where asking the SDK means its sampler, a
    span id and a context attach for a span it then drops. Under anything else (a recording
    span, a ``traceparent`` continued, no context at all: a root) the SDK decides as before."""
    return otel_context.get_current() is _UNSAMPLED_CONTEXT


class span:  # used as a function: ``with tracing.span("token.sign"):``
    """A child span of the current one, made current for the block. Nothing is built (no SDK
    call, no context change) in a request that is not sampled (``_unsampled_now``): the block
    gets the unsampled request's non-recording span. A no-op costing microseconds when
    tracing is off (the API's no-op tracer)."""

    __slots__ = ("_attributes", "_kind", "_name", "_started")

    def __init__(
        self,
        name: str,
        attributes: dict[str, str] | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> None:
        self._name = name
        self._attributes = attributes
        self._kind = kind
        self._started: Any = None

    def __enter__(self) -> Span:
        if _unsampled_now():
            return _UNSAMPLED_SPAN
        self._started = _tracer.start_as_current_span(
            self._name, kind=self._kind, attributes=self._attributes
        )
        return self._started.__enter__()  # type: ignore[no-any-return]

    def __exit__(self, *exc: Any) -> None:
        started, self._started = self._started, None
        if started is not None:
            started.__exit__(*exc)


def in_context(fn: Callable[[], T]) -> Callable[[], T]:
    """Bind ``fn`` to the caller's context, for thread pools that would otherwise lose it.

    ``loop.run_in_executor`` does not copy contextvars (unlike ``asyncio.to_thread``), so a
    span started in the worker thread would become a root span without this.
    """
    ctx = contextvars.copy_context()
    return lambda: ctx.run(fn)


TraceContext = otel_context.Context


def current_context() -> TraceContext:
    """The current trace context, to continue later in a background task (mail queue)."""
    return otel_context.get_current()


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to continue the trace in another process
    (a durable job); None when nothing is traced."""
    if _unsampled_now():
        return None
    if trace.get_current_span().get_span_context().trace_id == _UNSAMPLED_TRACE_ID:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    value = carrier.get("traceparent")
    return value if value and len(value) <= 64 else None


def context_of(traceparent: str | None) -> TraceContext | None:
    """The trace context a stored ``traceparent`` names (None: start no parent)."""
    if not traceparent:
        return None
    return propagate.extract({"traceparent": traceparent})


@contextlib.contextmanager
def attached(ctx: otel_context.Context | None) -> Iterator[None]:
    """Make ``ctx`` current for the block (spans started inside become its children)."""
    if ctx is None:
        yield
        return
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


def current_trace_ids() -> tuple[str, str] | None:
    """Hex trace and span id of the current span, when there is one."""
    if _unsampled_now():
        return None
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid and ctx.trace_id != _UNSAMPLED_TRACE_ID:
        return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
    return None


def log_correlation(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id``/``span_id`` of the current span, when there is one."""
    if _unsampled_now():
        return event_dict
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid and ctx.trace_id != _UNSAMPLED_TRACE_ID:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict
