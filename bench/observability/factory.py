"""ASGI factories for the overhead benchmark: the real service, and the same service with
metrics, logging and tracing switched off (metric objects replaced by no-ops)."""

from __future__ import annotations

from typing import Any

from auth_service.asgi import asgi_factory
from auth_service.observability import metrics
from auth_service.web import middleware


class _Null:
    def labels(self, *_a: Any, **_k: Any) -> _Null:
        return self

    def inc(self, *_a: Any) -> None:
        return

    def dec(self, *_a: Any) -> None:
        return

    def set(self, *_a: Any) -> None:
        return

    def observe(self, *_a: Any) -> None:
        return

    def clear(self) -> None:
        return


def observability_on() -> object:
    return asgi_factory()


def observability_off() -> object:
    middleware.COUNT_HTTP = False  # the HTTP metrics' plain counts too (ADR 0435)
    null = _Null()
    for name in dir(metrics):
        if name.isupper() and hasattr(getattr(metrics, name), "labels"):
            setattr(metrics, name, null)
    return asgi_factory()
