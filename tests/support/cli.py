"""The real `auth-service` command in a subprocess, for tests of the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(sys.executable).with_name("auth-service")


def cli_environment(data_dir: Path) -> dict[str, str]:
    """The environment of a CLI run: no AUTH_* of the developer's, a data directory of the
    test's, wide columns (rich tables) and no colour codes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    env.update(AUTH_DATA_DIR=str(data_dir), COLUMNS="250", NO_COLOR="1", PYTHONUNBUFFERED="1")
    return env


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``auth-service *args``; whatever its exit code, it never prints a traceback."""
    result = subprocess.run(
        [str(SCRIPT), *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout
    return result


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """``result`` failed with exactly one line on stderr, ``error: ...``, holding every one of
    ``needles``; that line."""
    assert result.returncode != 0, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def json_output(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a successful command printed on stdout."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
