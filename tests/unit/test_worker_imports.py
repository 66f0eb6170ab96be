"""A serving worker imports what serving needs, not the command line or rarely used libraries
(ADR 0437): each module below costs every worker its memory for the worker's lifetime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Imported by a worker only when it does what they are for.
NOT_AT_START = ("typer", "webauthn", "segno", "obstore", "auth_service.cli")

PROBE = """
import json, sys
from auth_service.asgi import asgi_factory
asgi_factory()
print(json.dumps(sorted(sys.modules)))
"""


def test_a_worker_builds_its_app_without_the_cli_and_rarely_used_libraries(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    env.update(
        AUTH_DATA_DIR=str(tmp_path), AUTH_DATABASE__URL=f"sqlite+aiosqlite:///{tmp_path}/w.db"
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    assert "auth_service.app" in modules  # the probe did build the app
    loaded = [m for m in modules if m.split(".")[0] in NOT_AT_START or m.startswith(NOT_AT_START)]
    assert loaded == [], loaded
