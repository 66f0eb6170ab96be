"""Workers cap glibc's malloc arenas unless the operator chose a value."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from auth_service.asgi import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt arenas are glibc's")
def test_caps_arenas_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas() is True


def test_an_explicit_environment_value_wins() -> None:
    # In a child process: glibc reads MALLOC_ARENA_MAX at start, and we must not override it.
    code = "from auth_service.asgi import limit_malloc_arenas as f; print(f())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"MALLOC_ARENA_MAX": "4", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"
