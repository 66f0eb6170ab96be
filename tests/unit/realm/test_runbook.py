"""Every test the config-as-code runbook names beside a step exists: a step whose test was
renamed or removed would silently stop being a tested command."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
RUNBOOK = REPO / "docs" / "operations" / "config-as-code.md"
DEFAULT = REPO / "tests" / "integration" / "test_realm_cli.py"


def test_every_named_test_exists() -> None:
    named: list[tuple[Path, str]] = []
    current = DEFAULT
    for cell in re.findall(r"`((?:tests/[\w/]+\.py)?::?test_\w+|test_\w+)`", RUNBOOK.read_text()):
        if "::" in cell:
            path, _, name = cell.partition("::")
            current = REPO / path if path else current
        else:
            current, name = DEFAULT, cell
        named.append((current, name))
    assert len(named) >= 8
    for path, name in named:
        assert re.search(rf"^(async )?def {name}\(", path.read_text(), re.M), (path, name)
