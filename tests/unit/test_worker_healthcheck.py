"""Served workers get time to import the service before uvicorn's supervisor pings them."""

from __future__ import annotations

import uvicorn

from auth_service.cli.serve_cmd import WORKER_HEALTHCHECK_SECONDS, _healthcheck_timeout


def test_the_supervisor_waits_longer_than_uvicorns_default() -> None:
    extra = _healthcheck_timeout(uvicorn.Config)
    config = uvicorn.Config(lambda: None, **extra)  # type: ignore[arg-type]
    # uvicorn's default (5 s) was exceeded at load 13-16 on 2 cores: workers were killed in a loop.
    assert config.timeout_worker_healthcheck == WORKER_HEALTHCHECK_SECONDS >= 30


def test_an_older_uvicorn_without_the_option_gets_nothing() -> None:
    class Old:
        def __init__(self, app: object, workers: int = 1) -> None: ...

    assert _healthcheck_timeout(Old) == {}
