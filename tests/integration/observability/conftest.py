from __future__ import annotations

import pytest

from tests.integration.observability.server import ensure_prometheus_tools


@pytest.fixture(scope="session")
def prometheus_tools() -> None:
    ensure_prometheus_tools()
