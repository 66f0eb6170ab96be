"""The HTTP metrics counted in plain integers and folded (ADR 0435) export what one
``inc``/``observe`` per request would have: same series, same bucket counts, same sums."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from auth_service.observability import metrics
from auth_service.observability.logging import AccessLog
from auth_service.web import middleware
from auth_service.web.middleware import HttpRecorder

# Durations on, between and beyond the bucket bounds (5 ms .. 10 s), sizes likewise.
DURATIONS = [0.0, 0.004, 0.005, 0.0051, 0.3, 2.5, 9.99, 10.0, 11.0, 120.0]
SIZES = [0, 64, 65, 900, 4096, 70_000, 5_000_000]
STATUSES = [101, 200, 204, 304, 404, 429, 500, 503, 99, 700]


def _quiet_recorder() -> HttpRecorder:
    access = AccessLog()
    access.enabled = False
    return HttpRecorder(access)


def _samples(route: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in REGISTRY.collect():
        for s in family.samples:
            if s.labels.get("route") == route and s.name.startswith("auth_http_"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _reference(route: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The same requests through prometheus_client objects of the same shape, one call each."""
    registry = CollectorRegistry()
    requests = Counter(
        "auth_http_requests", "", ["method", "route", "status_class"], registry=registry
    )
    duration = Histogram(
        "auth_http_request_duration_seconds",
        "",
        ["method", "route"],
        buckets=metrics.HTTP_DURATION._upper_bounds,
        registry=registry,
    )
    response = Histogram(
        "auth_http_response_size_bytes",
        "",
        ["route"],
        buckets=metrics.HTTP_RESPONSE_SIZE._upper_bounds,
        registry=registry,
    )
    request = Histogram(
        "auth_http_request_size_bytes",
        "",
        ["route"],
        buckets=metrics.HTTP_REQUEST_SIZE._upper_bounds,
        registry=registry,
    )
    for i, status in enumerate(STATUSES):
        classes = ("1xx", "2xx", "3xx", "4xx", "5xx")
        requests.labels("GET", route, classes[min(max(status // 100, 1), 5) - 1]).inc()
        duration.labels("GET", route).observe(DURATIONS[i])
        response.labels(route).observe(SIZES[i % len(SIZES)])
        if i % 2:
            request.labels(route).observe(SIZES[(i + 3) % len(SIZES)])
    out = {}
    for family in registry.collect():
        for s in family.samples:
            if not s.name.endswith("_created"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _record_all(recorder: HttpRecorder, route: str) -> None:
    for i, status in enumerate(STATUSES):
        length = str(SIZES[(i + 3) % len(SIZES)]).encode() if i % 2 else None
        recorder.record(
            "GET", route, status, DURATIONS[i], SIZES[i % len(SIZES)], length, None, "r", route
        )


def test_fold_exports_what_one_observe_per_request_would() -> None:
    route = f"/fold-{uuid.uuid4().hex[:8]}"
    recorder = _quiet_recorder()
    _record_all(recorder, route)  # no running loop: folded at once
    assert _samples(route) == _reference(route)
    _record_all(recorder, route)  # a second batch adds, it is not re-added
    twice = {k: v * 2 for k, v in _reference(route).items()}
    assert _samples(route) == twice


def test_counts_wait_for_the_timer_or_a_collection() -> None:
    route = f"/fold-{uuid.uuid4().hex[:8]}"

    def counted() -> float:
        labels = {"method": "GET", "route": route, "status_class": "2xx"}
        child = metrics.HTTP_REQUESTS.labels(*labels.values())
        return float(child._value.get())

    async def scenario() -> tuple[float, float, float]:
        recorder = _quiet_recorder()
        for _ in range(5):
            recorder.record("GET", route, 200, 0.001, 10, None, None, "r", route)
        unfolded = counted()  # not folded yet: the objects have not moved
        await asyncio.sleep(metrics.FOLD_SECONDS * 3)
        by_timer = counted()
        recorder.record("GET", route, 200, 0.001, 10, None, None, "r", route)
        by_collection = REGISTRY.get_sample_value(
            "auth_http_requests_total", {"method": "GET", "route": route, "status_class": "2xx"}
        )
        return unfolded, by_timer, by_collection or 0.0

    assert asyncio.run(scenario()) == (0.0, 5.0, 6.0)


def test_off_counts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    route = f"/fold-{uuid.uuid4().hex[:8]}"
    recorder = _quiet_recorder()
    monkeypatch.setattr(middleware, "COUNT_HTTP", False)
    _record_all(recorder, route)
    assert not any(v for v in _samples(route).values())
