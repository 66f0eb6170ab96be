"""schemathesis hooks (SCHEMATHESIS_HOOKS): how to send the one non-JSON body of the API,
``POST /v1/admin/users:import``'s NDJSON, which schemathesis has no serializer for."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    # The schema says "a string": the generated text goes on the wire as it is.
    return value.encode() if isinstance(value, str) else str(value).encode()
