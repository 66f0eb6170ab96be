"""pytest plugin: every log line of the session goes to one file, and the session fails when
a password or token the tests used appears in it.

A session-finish hook rather than a test that must run last: it sees every test whichever
ran, in whatever order, and a run of a few files is checked as well as the whole suite.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from auth_service.config.settings import Environment, LoggingSettings
from auth_service.observability.logging import configure_logging, flush_access_log
from tests.support import secrets


def log_file() -> Path:
    """Where this session's logs go (AUTH_TEST_LOG_FILE, else one file per process)."""
    return Path(
        os.environ.get("AUTH_TEST_LOG_FILE")
        or Path(tempfile.gettempdir()) / f"auth-service-test-{os.getpid()}.log"
    )


class _Tee:
    def __init__(self, path: Path) -> None:
        self._fh = path.open("a", encoding="utf-8")

    def write(self, text: str) -> int:
        self._fh.write(text)
        self._fh.flush()
        return len(text)

    def flush(self) -> None:
        self._fh.flush()


_captured: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def captured_log() -> Path:
    """Send every log line of the session (structlog and stdlib) to one file, as JSON."""
    path = log_file()
    path.write_text("")
    # The tee is the output stream, so the JSON access-line fast path writes here too.
    configure_logging(
        LoggingSettings(level="DEBUG", format="json"),
        Environment.production,
        stream=_Tee(path),  # type: ignore[arg-type]
    )
    _captured.append(path)
    return path


def problem() -> str | None:
    """What is wrong with the session's logs, if anything."""
    if not _captured:
        return None
    flush_access_log()  # access lines still batched in this process
    text = _captured[0].read_text(encoding="utf-8")
    if secrets.seen["responses"] and not text:
        return "the session logged nothing: the log capture is broken"
    if secrets.seen["responses"] and not secrets.SECRETS:
        return "no secret collected from the API responses: the collection is broken"
    found = secrets.leaked(text)
    if found:
        return f"{len(found)} secrets found in the logs ({_captured[0]}), e.g. {found[0][:6]}..."
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    message = problem()
    if message is None:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("!", message, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
