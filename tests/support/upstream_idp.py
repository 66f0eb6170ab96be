"""An upstream OpenID Connect provider for the federation tests: panva's oidc-provider 9
(tests/harness/upstream-idp.mjs) in a subprocess, with one client registered for our
callbacks. Skips (or fails under AUTH_TEST_REQUIRE_SERVICES=1) without the Node harness.

    with upstream_idp(["http://127.0.0.1:8000/login/federated/up/callback"]) as idp:
        idp.issuer, idp.client_id, idp.client_secret
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from tests.support.harness import HARNESS_DIR, missing_packages
from tests.support.services import service_missing

SCRIPT = HARNESS_DIR / "upstream-idp.mjs"


@dataclass(frozen=True)
class UpstreamIdp:
    issuer: str
    client_id: str
    client_secret: str


@contextlib.contextmanager
def upstream_idp(
    redirect_uris: list[str],
    *,
    client_id: str = "auth-service-rp",
    client_secret: str = "upstream-test-client-credential",
) -> Iterator[UpstreamIdp]:
    why = missing_packages()
    if why is not None:
        service_missing("the Node harness", why)
    args = ["node", str(SCRIPT), "--port", "0", "--client-id", client_id]
    args += ["--client-secret", client_secret]
    for uri in redirect_uris:
        args += ["--redirect-uri", uri]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=HARNESS_DIR)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"upstream-idp.mjs exited with {process.wait(5)}")
        yield UpstreamIdp(json.loads(line)["issuer"], client_id, client_secret)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
