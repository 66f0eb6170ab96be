"""Metrics of `auth-service serve --workers 2`: summed across workers, and lint-clean."""

from __future__ import annotations

import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.prometheus import Tools
from tests.support.server import Server, base_env, migrate, postgres_database, sample, scrape
from tests.support.services import sqlalchemy_url

pytestmark = pytest.mark.postgres

PASSWORD = "Tr0ub4dor&3-horse"
USERS = 6
BAD_LOGINS = 24


def _post_all(url: str, bodies: list[dict[str, str]]) -> list[int]:
    """POST every body concurrently, each on a new connection, so the kernel spreads them over
    both workers; return the statuses."""

    def post(body: dict[str, str]) -> int:
        with httpx.Client(timeout=30) as client:
            return client.post(url, json=body).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        return list(pool.map(post, bodies))


def test_two_workers_sum_and_promtool_is_clean(tmp_path: Path, tools: Tools) -> None:
    metrics_dir = tmp_path / "prometheus-multiproc"
    with postgres_database() as dsn:
        env = base_env(tmp_path, sqlalchemy_url(dsn), PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
        migrate(tmp_path, env)
        with Server(tmp_path, env, workers=2) as server:
            # Each served worker opened its kept database connections (pool_size, 10) before
            # its first request (Database.warm).
            assert server.logs().count('"connections_opened": 10') == 2, server.logs()[-3000:]
            users = [
                {"email": f"mw-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
                for _ in range(USERS)
            ]
            strangers = [
                {"email": f"nobody-{i}@example.com", "password": "wrong-password"}
                for i in range(BAD_LOGINS)
            ]
            assert _post_all(f"{server.url}/v1/auth/register", users) == [202] * USERS
            assert _post_all(f"{server.url}/v1/auth/login", users) == [200] * USERS
            assert _post_all(f"{server.url}/v1/auth/login", strangers) == [401] * BAD_LOGINS

            # Every scrape, whichever worker answers it, reports the sum over both workers.
            texts = [scrape(server) for _ in range(4)]
            for text in texts:
                assert sample(text, "auth_logins_total", result="success") == USERS
                assert sample(text, "auth_logins_total", result="bad_credentials") == BAD_LOGINS
                assert sample(text, "auth_registrations_total", result="success") == USERS
                assert (
                    sample(
                        text,
                        "auth_http_requests_total",
                        method="POST",
                        route="/v1/auth/login",
                        status_class="4xx",
                    )
                    == BAD_LOGINS
                )
                assert sample(text, "auth_build_info") == 1
                assert sample(text, "auth_http_requests_in_flight") == 0
                # The pool gauges are per worker and summed: 2 x the default pool of 10.
                assert sample(text, "auth_db_pool_size") == 20
            workers = {p.stem.rsplit("_", 1)[1] for p in metrics_dir.glob("counter_*.db")}
            assert len(workers) >= 2, f"one worker served everything: {workers}"

            lint = subprocess.run(
                [tools.promtool, "check", "metrics"],
                input=texts[-1],
                capture_output=True,
                text=True,
                check=False,
            )
            assert lint.returncode == 0, lint.stdout + lint.stderr
            assert not (lint.stdout + lint.stderr).strip(), lint.stdout + lint.stderr
