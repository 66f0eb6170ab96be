"""docs/configuration.md is generated from the Settings models and must be up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    for name, info in Settings.model_fields.items():
        annotation = info.annotation
        fields = getattr(annotation, "model_fields", None)
        keys = [f"{name}.{sub}" for sub in fields] if fields else [name]
        for key in keys:
            assert f"| `{key}` |" in text, key
