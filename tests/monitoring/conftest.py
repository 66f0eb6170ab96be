"""Fixtures of the monitoring tests: the real Prometheus tools, installed when absent."""

from __future__ import annotations

import pytest

from tests.monitoring.monitoring_support import Tools, ensure_tools


@pytest.fixture(scope="session")
def tools() -> Tools:
    return ensure_tools()
