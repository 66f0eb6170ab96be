"""What the HTTP metrics and the access line add to one static-document answer, in process.

``.venv/bin/python -m bench.observability.static_path [N]``: N calls of ``StaticDocuments``
(web/static.py) answering the JWKS from a prepared document to a ``send`` that does nothing,
with observability off (no counting, access log off) and on (plain-count metrics, JSON access
line batched to /dev/null), best of 7 rounds of process CPU time each, alternating.
The rest of a request (uvicorn's parsing and socket writes) is the same in both, so this is the
"on - off" of ``bench/observability/run.py`` without that run's noise.
"""

from __future__ import annotations

import asyncio
import sys
import time
from types import SimpleNamespace
from typing import Any

from auth_service.config.settings import Environment, LoggingSettings
from auth_service.observability.logging import AccessLog, configure_logging
from auth_service.web import middleware
from auth_service.web.middleware import HttpRecorder
from auth_service.web.static import StaticDocuments, StaticRoute

PATH = "/.well-known/jwks.json"


class _Document:
    body = b'{"keys": []}' * 40
    etag = '"0123456789abcdef"'


_DOCUMENT = _Document()


async def _load(_services: Any) -> _Document:
    return _DOCUMENT


async def _send(_message: Any) -> None:
    return None


async def _receive() -> Any:
    return {"type": "http.request"}


async def _app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("every request here is answered by the static layer")


async def _time(layer: StaticDocuments, scope: dict[str, Any], n: int) -> float:
    # CPU time of this process, not wall-clock time: on a shared machine the wall clock counts
    # the neighbours' time slices too (load 10-18 on 2 cores here).
    start = time.process_time()
    for _ in range(n):
        await layer(scope, _receive, _send)
    return time.process_time() - start


async def main(n: int) -> dict[str, float]:
    with open("/dev/null", "w") as devnull:
        configure_logging(LoggingSettings(format="json"), Environment.production, devnull)
        route = StaticRoute(PATH, "application/json", "public, max-age=300", _load)
        layers = {}
        for variant, enabled in (("off", False), ("on", True)):
            access = AccessLog()
            access.enabled = enabled
            layers[variant] = StaticDocuments(
                _app, [route], hsts=True, trusted_proxies=(), recorder=HttpRecorder(access)
            )
        scope = {
            "type": "http",
            "method": "GET",
            "path": PATH,
            "headers": [(b"host", b"x"), (b"user-agent", b"wrk")],
            "client": ("127.0.0.1", 40000),
            "app": SimpleNamespace(state=SimpleNamespace(services=None)),
        }
        best = {"off": float("inf"), "on": float("inf")}
        for _ in range(7):
            for variant, layer in layers.items():
                middleware.COUNT_HTTP = variant == "on"
                best[variant] = min(best[variant], await _time(layer, scope, n) / n)
        middleware.COUNT_HTTP = True
    return {
        "off_us": round(best["off"] * 1e6, 2),
        "on_us": round(best["on"] * 1e6, 2),
        "on_minus_off_us": round((best["on"] - best["off"]) * 1e6, 2),
    }


if __name__ == "__main__":
    print(asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)))
