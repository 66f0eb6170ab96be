"""The raw ASGI ceiling: a bare ASGI callable answering a fixed JSON body, nothing else.

No framework at all: no Starlette, no routing, no middleware. Served by uvicorn with the same
workers, loop and HTTP parser as the service (and as ``trivial_app``), it measures what the
server stack alone costs per request, the most any Python endpoint here can do (issue #19:
cheap endpoints are reported against it, beside the FastAPI baseline).
"""

from __future__ import annotations

import json
from typing import Any

_BODY = json.dumps(
    {"keys": [{"kty": "EC", "crv": "P-256", "kid": "trivial", "use": "sig"}]},
    separators=(",", ":"),
).encode()
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_BODY)).encode()),
    ],
}
_BODY_MESSAGE = {"type": "http.response.body", "body": _BODY}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(_START)
    await send(_BODY_MESSAGE)
