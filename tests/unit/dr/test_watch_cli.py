"""`dr watch` / `dr rearm` without a cluster: one-line errors, and observing only when off."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from auth_service.backup.storage import open_storage
from auth_service.cli.main import app
from auth_service.config.backup import BackupDestination
from auth_service.dr.auto import OBSERVATIONS, Observation

# Nothing listens on port 1 or 2: both nodes are unreachable, at once.
BASE: dict[str, Any] = {
    "database": {"url": "postgresql+asyncpg://postgres@127.0.0.1:1/auth"},
    "dr": {"standby_url": "postgresql://postgres@127.0.0.1:2/auth"},
}


def _cli(tmp_path: Path, data: dict[str, Any], *args: str) -> Any:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), **data}))
    return CliRunner().invoke(app, ["--config", str(config), "dr", *args])


def test_watch_without_a_shared_store_says_what_to_set(tmp_path: Path) -> None:
    result = _cli(tmp_path, BASE, "watch", "--once")
    assert result.exit_code == 1
    assert "set dr.auto.store (or backup.destinations)" in result.output
    assert "Traceback" not in result.output


def test_watch_rejects_an_unusable_observer_id(tmp_path: Path) -> None:
    data = {**BASE, "dr": {**BASE["dr"], "auto": {"store": {"url": f"file://{tmp_path}/s"}}}}
    result = _cli(tmp_path, data, "watch", "--once", "--observer-id", "a/b")
    assert result.exit_code == 1
    assert "--observer-id 'a/b'" in result.output


def test_watch_off_observes_and_publishes_only(tmp_path: Path) -> None:
    store_url = f"file://{tmp_path / 'store'}"
    data = {**BASE, "backup": {"destinations": [{"url": store_url}]}}
    result = _cli(tmp_path, data, "watch", "--once", "--observer-id", "site-c")
    assert result.exit_code == 0, result.output
    assert "observing only" in result.output
    assert "primary 127.0.0.1:1 UNREACHABLE; automatic failover is off" in result.output
    store = open_storage(BackupDestination(url=store_url))
    raw = asyncio.run(store.get_bytes(f"{OBSERVATIONS}site-c.json"))
    seen = Observation.from_json(raw)
    assert not seen.primary_reachable
    assert not seen.standby_reachable

    result = _cli(tmp_path, data, "rearm")
    assert result.exit_code == 0, result.output
    assert "no failover lock" in result.output


def test_enabling_with_a_quorum_of_one_is_a_configuration_error(tmp_path: Path) -> None:
    data = {**BASE, "dr": {**BASE["dr"], "auto": {"enabled": True, "quorum": 1}}}
    result = _cli(tmp_path, data, "watch", "--once")
    assert result.exit_code == 2
    assert "dr.auto: Value error, quorum must be at least 2 when enabled" in result.output
