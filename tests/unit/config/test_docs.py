"""docs/configuration.md is generated from the Settings models and must be up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


def test_configuration_doc_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_config_docs.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_every_key_is_documented() -> None:
    from auth_service.config.settings import Settings

    text = (REPO / "docs" / "configuration.md").read_text()

    def keys(model: Any, prefix: str = "") -> list[str]:
        """Leaf keys; a section nested in a section (dr.auto) has its own table."""
        found = []
        for name, info in model.model_fields.items():
            fields = getattr(info.annotation, "model_fields", None)
            found += keys(info.annotation, f"{prefix}{name}.") if fields else [prefix + name]
        return found

    for key in keys(Settings):
        assert f"| `{key}` |" in text, key
