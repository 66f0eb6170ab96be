"""Runs last (file name): no password or token the suite used appears in any log line."""

from __future__ import annotations

from pathlib import Path

from auth_service.observability.logging import flush_access_log
from tests.support.secrets import SECRETS


def test_no_secret_reaches_the_logs(captured_log: Path) -> None:
    flush_access_log()  # access lines still batched in this process
    text = captured_log.read_text(encoding="utf-8")
    assert text, "the suite logged nothing: the capture is broken"
    assert len(SECRETS) > 20, "too few secrets collected: the collection is broken"
    leaked = sorted(s for s in SECRETS if s in text)
    assert not leaked, f"{len(leaked)} secrets found in logs, e.g. {leaked[0][:6]}..."
