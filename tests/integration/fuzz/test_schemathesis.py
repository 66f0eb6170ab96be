"""Property-based fuzzing of the whole API with schemathesis, against a real server.

``auth-service serve`` runs as a subprocess on SQLite and on PostgreSQL; schemathesis reads its
``/openapi.json`` and sends generated requests, valid and invalid, to every operation with an
admin's access token (an admin may call every route). Every check it has must pass: no 5xx,
each status and header documented, each body matching its schema, invalid input refused, auth
really enforced, 405s with ``Allow``. Whatever it finds is fixed in the service or in the
OpenAPI declarations, never excluded here.

The run is sized for CI: a fixed number of examples per operation and a fixed seed, so a run
is reproducible and takes well under a minute per database.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import CLI, Server, base_env, migrate, postgres_database
from tests.support.services import sqlalchemy_url

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CONFIG = Path(__file__).with_name("schemathesis.toml")
ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "Tr0ub4dor&3-horse"
MAX_EXAMPLES = 50
SEED = 20261204

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            url = sqlalchemy_url(stack.enter_context(postgres_database()))
        else:
            url = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
        env = base_env(tmp_path, url)
        migrate(tmp_path, env)
        yield stack.enter_context(Server(tmp_path, env))


def _admin_tokens(server: Server, count: int) -> list[str]:
    """Access tokens of ``count`` sessions of one new admin (created with the CLI)."""
    email = f"fuzz-admin-{uuid.uuid4().hex[:8]}@example.com"
    created = subprocess.run(
        [CLI, "users", "create", "--email", email, "--admin", "--password-stdin"],
        input=PASSWORD,
        cwd=server.tmp,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    tokens = []
    for _ in range(count):
        r = httpx.post(
            f"{server.url}/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
        )
        assert r.status_code == 200, r.text
        tokens.append(str(r.json()["access_token"]))
    return tokens


def _answers(server: Server) -> dict[tuple[str, str], set[int]]:
    """(method, route template) -> the statuses the server's access log shows."""
    seen: dict[tuple[str, str], set[int]] = {}
    for line in server.logs().splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if "route" in entry and "status" in entry:
            # A route's template names its path converters ({passkey_id:uuid}); OpenAPI does not.
            route = re.sub(r"\{(\w+):\w+\}", r"{\1}", entry["route"])
            seen.setdefault((entry["method"], route), set()).add(entry["status"])
    return seen


def test_schemathesis_finds_nothing(server: Server, tmp_path: Path) -> None:
    admin, spare = _admin_tokens(server, 2)
    started = time.monotonic()
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(CONFIG),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--request-timeout",
            "10",
            # A slow CI machine must not turn into a failure: speed is bench/'s business.
            "--suppress-health-check",
            "too_slow",
            "--output-truncate",
            "false",
        ],
        cwd=tmp_path,
        env={
            **os.environ,
            "AUTH_FUZZ_ADMIN_TOKEN": admin,
            "AUTH_FUZZ_SPARE_TOKEN": spare,
            "SCHEMATHESIS_HOOKS": "tests.integration.fuzz.hooks",
            "PYTHONPATH": str(ROOT),
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.monotonic() - started
    report = result.stdout[-30000:] + result.stderr[-4000:]
    assert result.returncode == 0, f"schemathesis failed after {elapsed:.0f}s:\n{report}"
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated is not None, report
    assert int(generated.group(1)) >= 500, report  # the run really covered the API

    # The run stayed authenticated: the admin's session is still live, and every Bearer
    # operation answered something other than 401 at least once.
    me = httpx.get(f"{server.url}/v1/users/me", headers={"Authorization": f"Bearer {admin}"})
    assert me.status_code == 200, me.text
    spec = httpx.get(f"{server.url}/openapi.json").json()
    answers = _answers(server)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if "401" in operation["responses"] and path != "/v1/sessions/{session_id}":
                statuses = answers.get((method.upper(), path), set())
                assert statuses - {401}, (method, path, statuses)
    assert "Traceback" not in server.logs(), server.logs()[-4000:]
