"""`backup wal-push` / `wal-fetch` as archive_command and restore_command call them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.integration.backup.support import cli
from tests.support.settings import TEST_MASTER_KEY, write_config

SEGMENT = "000000010000000000000003"


def _config(tmp_path: Path, key: str, dest: dict[str, Any]) -> Path:
    return write_config(
        tmp_path / "config.yaml",
        {
            "data_dir": str(tmp_path / "data"),
            "master_key": TEST_MASTER_KEY,
            "backup": {"key": key, "destinations": [dest]},
        },
    )


def test_push_fetch_round_trip_and_idempotence(
    tmp_path: Path, backup_key: str, destination: dict[str, Any]
) -> None:
    config = _config(tmp_path, backup_key, destination)
    wal = tmp_path / "pg_wal"
    wal.mkdir()
    segment = wal / SEGMENT
    segment.write_bytes(os.urandom(1024 * 1024) + bytes(15 * 1024 * 1024))

    assert cli(config, "backup", "wal-push", str(segment)).exit_code == 0
    # PostgreSQL retries archiving after a crash: an identical copy is success.
    assert cli(config, "backup", "wal-push", str(segment)).exit_code == 0

    fetched = tmp_path / "RECOVERYXLOG"
    result = cli(config, "backup", "wal-fetch", SEGMENT, str(fetched))
    assert result.exit_code == 0, result.output
    assert fetched.read_bytes() == segment.read_bytes()

    # Different contents under the same name: two clusters share a prefix. Refuse.
    segment.write_bytes(os.urandom(16 * 1024 * 1024))
    result = cli(config, "backup", "wal-push", str(segment))
    assert result.exit_code == 1
    assert "already archived with different contents" in result.output


def test_fetch_of_missing_file_fails_quietly(tmp_path: Path, backup_key: str) -> None:
    config = _config(tmp_path, backup_key, {"url": f"file://{tmp_path / 'store'}"})
    result = cli(config, "backup", "wal-fetch", "00000002.history", str(tmp_path / "x"))
    assert result.exit_code == 1
    assert result.output == ""
    result = cli(config, "backup", "wal-push", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert "does not exist" in result.output
