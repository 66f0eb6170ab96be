"""The console script leaves wal-push/wal-fetch without finalisation, keeping exit codes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from auth_service.cli.entry import _subcommand


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["backup", "wal-push", "p"], ["backup", "wal-push", "p"]),
        (
            ["--config", "c.yaml", "backup", "wal-fetch", "f", "p"],
            ["backup", "wal-fetch", "f", "p"],
        ),
        (["-c", "backup", "backup", "list"], ["backup", "list"]),
        (["--config=c.yaml", "serve"], ["serve"]),
    ],
)
def test_subcommand_skips_global_options(argv: list[str], words: list[str]) -> None:
    assert _subcommand(argv) == words


def test_wal_push_failure_keeps_its_exit_code_and_message(tmp_path: Path) -> None:
    script = shutil.which("auth-service", path=str(Path(sys.executable).parent))
    assert script is not None
    config = tmp_path / "c.yaml"
    config.write_text(f"backup:\n  destinations:\n    - url: file://{tmp_path / 'store'}\n")
    result = subprocess.run(
        [script, "--config", str(config), "backup", "wal-push", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
