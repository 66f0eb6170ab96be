"""CLI commands reconfigure logging onto the CliRunner's streams, which close after the
invoke; restore the suite's logging so later tests can still log."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    streams = [(h, h.stream) for h in handlers if isinstance(h, logging.StreamHandler)]
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)
    for handler, stream in streams:
        handler.setStream(stream)
