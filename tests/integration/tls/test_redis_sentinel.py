"""redis.url redis+sentinel://… against a real master, replica and two Sentinels, the master
killed while logins keep coming (ADR 0312): every request is still answered (no 5xx, no
dropped connection) while the rate limits and lockout count in-process, the readiness
check shows Redis degraded and back, and afterwards the service writes to the promoted
replica without a restart or a config change."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.support.redis_server import sentinel_group
from tests.support.server import Server, base_env, migrate, postgres_database
from tests.support.services import sqlalchemy_url
from tests.support.wait import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.slow]


class LoginLoad(threading.Thread):
    """Failed logins, one after another, until stopped (bounded: 120 s at most)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.outcomes: Counter[str] = Counter()
        self.stopping = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=self.url, timeout=15) as client:
            while not self.stopping.is_set() and time.monotonic() < deadline:
                email = f"load-{uuid.uuid4().hex[:8]}@example.com"
                try:
                    r = client.post("/v1/auth/login", json={"email": email, "password": "wrong"})
                    self.outcomes[str(r.status_code)] += 1
                except httpx.HTTPError as exc:
                    self.outcomes[type(exc).__name__] += 1

    def stop(self) -> Counter[str]:
        self.stopping.set()
        self.join(timeout=30)
        return self.outcomes


def _redis_check(server: Server) -> str:
    body = httpx.get(f"{server.management_url}/health", timeout=10).json()
    return str(body["checks"]["redis"]["status"])


def test_the_master_killed_mid_load(tmp_path: Path) -> None:
    with sentinel_group(tmp_path) as group, postgres_database() as dsn:
        env = base_env(
            tmp_path,
            sqlalchemy_url(dsn),
            AUTH_REDIS__URL=group.url,
            AUTH_RATE_LIMITS__STORAGE="redis",
            AUTH_HEALTH__INTERVAL_SECONDS="0.5",
        )
        migrate(tmp_path, env)
        with Server(tmp_path, env, workers=2) as server:
            wait_for(lambda: _redis_check(server) == "up", 20, "redis check up")
            load = LoginLoad(server.url)
            load.start()
            time.sleep(2)
            with group.master.client() as master:
                assert master.dbsize() > 0  # the load writes through Sentinel's master
            group.kill_master()
            killed = time.monotonic()
            wait_for(lambda: group.master_port() == group.replica.port, 30, "replica promoted")
            promoted_after = time.monotonic() - killed
            wait_for(lambda: _redis_check(server) == "up", 30, "redis check up again")
            with group.replica.client() as new_master:
                before = new_master.dbsize()
                wait_for(lambda: new_master.dbsize() > before, 20, "writes on the new master")
                assert new_master.info("replication")["role"] == "master"
            outcomes = load.stop()
        print(f"failover: promoted {promoted_after:.1f}s after the kill; outcomes {dict(outcomes)}")
        assert set(outcomes) == {"401"}, outcomes  # every login answered, none refused
        assert outcomes["401"] > 20
        logs = server.logs()
        assert "Traceback" not in logs
