"""The schema check of the serving processes reads the migration head without Alembic
(``db.revision``); it must give Alembic's answer, and serving must not import Alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from auth_service.db.migrate import alembic_head
from auth_service.db.revision import head_revision


def test_the_head_is_alembics_head() -> None:
    assert head_revision() == alembic_head()


def _migration(directory: Path, revision: str, down: str | None) -> None:
    down_literal = "None" if down is None else repr(down)
    (directory / f"{revision}_step.py").write_text(
        f"revision: str = {revision!r}\ndown_revision: str | None = {down_literal}\n"
    )


def test_a_linear_history_has_its_last_step_as_head(tmp_path: Path) -> None:
    _migration(tmp_path, "0001", None)
    _migration(tmp_path, "0002", "0001")
    _migration(tmp_path, "0003", "0002")
    assert head_revision(tmp_path) == "0003"


def test_a_branched_history_is_refused(tmp_path: Path) -> None:
    _migration(tmp_path, "0001", None)
    _migration(tmp_path, "0002", "0001")
    _migration(tmp_path, "0003", "0001")
    with pytest.raises(RuntimeError, match="one migration head"):
        head_revision(tmp_path)


def test_serving_does_not_import_alembic() -> None:
    # The app factory, the services and the health checks are what every worker imports.
    code = (
        "import sys\n"
        "import auth_service.app, auth_service.services, auth_service.health.checks\n"
        "import auth_service.runtime.database\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
