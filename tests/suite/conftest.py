"""Tests of the suite's own rules (tests/support/ plugins), each in a pytest run of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose runs import this repository's tests.support, and nothing of this
    session: every variable the plugins read is reset."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("AUTH_TEST_LOG_FILE", str(pytester.path / "session.log"))
    monkeypatch.delenv("AUTH_TEST_REQUIRE_SERVICES", raising=False)
    return pytester
