"""SIGTERM under load: readiness turns 503 at once, requests keep being served during the
drain delay, in-flight requests finish, then the process exits; no request is cut.

The load stops sending 0.3 s after it sees readiness fail, as a load balancer or Kubernetes
endpoints controller would; the drain delay must cover that lag (docs/operations/health.md).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.load import Load
from tests.support.server import Server, base_env, migrate
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_without_cutting_requests(tmp_path: Path, workers: int) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    env = base_env(tmp_path, database, AUTH_HEALTH__DRAIN_DELAY_SECONDS="1.5")
    migrate(tmp_path, env)
    server = Server(tmp_path, env, workers=workers).start()
    ready_codes: list[tuple[float, int | str]] = []
    polling = threading.Event()
    load = Load(f"{server.url}/.well-known/jwks.json", clients=4)

    def poll_readiness() -> None:
        with httpx.Client(timeout=5) as client:
            while not polling.is_set():
                try:
                    code: int | str = client.get(
                        f"{server.management_url}/health/ready"
                    ).status_code
                except httpx.TransportError as exc:
                    code = type(exc).__name__
                ready_codes.append((time.monotonic(), code))
                if code != 200 and load.routed.is_set():
                    threading.Timer(0.3, load.routed.clear).start()
                time.sleep(0.02)

    poller = threading.Thread(target=poll_readiness, daemon=True)
    try:
        with load:
            poller.start()
            wait_for(lambda: load.served() >= 20, 30, "requests served before SIGTERM")
            served_before = load.served()
            assert server.process is not None
            term_at = time.monotonic()
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(timeout=30)
            exited_at = time.monotonic()
            load.stop()
            polling.set()
            poller.join(timeout=10)
    finally:
        server.stop()
    logs = server.logs()
    assert load.failures() == {}, (load.failures(), load.errors[:5], logs[-2000:])
    assert load.outcomes["refused"] == 0
    # Requests were still answered during the drain delay, after SIGTERM.
    assert load.served() > served_before
    after = [(t, c) for t, c in ready_codes if t > term_at]
    # Readiness failed with 503 while the listeners were still open: the first answer that
    # was not 200 is a 503, never a refused connection, and requests were still served after
    # it (events in order, not a wall-clock bound a busy machine could miss)...
    first_503, code = next((t, c) for t, c in after if c != 200)
    assert code == 503, after
    assert any(t > first_503 for t in load.answered_at)
    assert all(c != 200 for t, c in after if t > first_503)
    # ...and the drain delay was honoured before the process went away.
    assert exited_at - term_at >= 1.4
    assert logs.count('"event": "draining"') >= workers
