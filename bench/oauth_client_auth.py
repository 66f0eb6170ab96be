"""What private_key_jwt and DPoP add to a token request: sequential client_credentials
requests against a live server (PostgreSQL, Redis, one worker), with client_secret_basic,
private_key_jwt (RFC 7523) and client_secret_basic plus a DPoP proof (RFC 9449).

    AUTH_TEST_REDIS_DB=3 .venv/bin/python -m bench.oauth_client_auth [N]

Prints p50 and p95 latency per method. Uses the test suite's live-server helpers (a fresh
database on the local PostgreSQL); not part of ``make bench``.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from tests.support.live_server import run_live_server
from tests.support.oauth_live import create_client

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
Request = Callable[[], tuple[dict[str, str], dict[str, str]]]


def _latencies(http: httpx.Client, make: Request, auth: httpx.Auth | None, n: int) -> list[float]:
    out = []
    for _ in range(n):
        data, headers = make()
        start = time.perf_counter()
        r = http.post("/oauth2/token", data=data, headers=headers, auth=auth)
        out.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, r.text
    return out


def main(n: int) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    form = {"grant_type": "client_credentials"}
    with tempfile.TemporaryDirectory() as tmp, run_live_server(Path(tmp)) as live:
        common = ("--grant-type", "client_credentials", "--scope", "")
        basic = create_client(live, *common)
        jwks = json.dumps({"keys": [{**jwk, "kid": "k1"}]})
        signed = create_client(live, *common, "--auth-method", "private_key_jwt", "--jwks", jwks)

        def plain() -> tuple[dict[str, str], dict[str, str]]:
            return form, {}

        def assertion() -> tuple[dict[str, str], dict[str, str]]:
            now, cid = int(time.time()), signed["client_id"]
            claims = {"iss": cid, "sub": cid, "aud": live.url, "iat": now, "exp": now + 60}
            claims["jti"] = uuid.uuid4().hex
            token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"})
            return {**form, "client_assertion_type": ASSERTION_TYPE, "client_assertion": token}, {}

        def dpop() -> tuple[dict[str, str], dict[str, str]]:
            claims = {"jti": uuid.uuid4().hex, "htm": "POST", "iat": int(time.time())}
            claims["htu"] = live.url + "/oauth2/token"
            head = {"typ": "dpop+jwt", "jwk": jwk}
            return form, {"DPoP": jwt.encode(claims, key, algorithm="ES256", headers=head)}

        secret_auth = httpx.BasicAuth(basic["client_id"], basic["client_secret"])
        cases: list[tuple[str, Request, httpx.Auth | None]] = [
            ("client_secret_basic", plain, secret_auth),
            ("private_key_jwt", assertion, None),
            ("client_secret_basic + DPoP", dpop, secret_auth),
        ]
        with httpx.Client(base_url=live.url, timeout=30) as http:
            for name, make, auth in cases:
                _latencies(http, make, auth, 20)  # warm-up
                ms = _latencies(http, make, auth, n)
                p95 = statistics.quantiles(ms, n=20)[18]
                print(f"{name:28s} p50 {statistics.median(ms):6.2f} ms  p95 {p95:6.2f} ms  n={n}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
