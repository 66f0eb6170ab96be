"""The encryption-in-transit runbook names, for every step, the test that runs its command;
each name must be a test that exists, so a renamed or deleted test breaks this one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "operations" / "encryption-in-transit.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def test_every_step_names_an_existing_test() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    steps = text.count("Tested by:")
    references = REFERENCE.findall(text)
    assert steps >= 7
    assert len(references) >= steps
    for path, name in references:
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        defined = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        assert name in defined, f"{path}::{name} named by {RUNBOOK.name} does not exist"
