"""Hot reload: validation first, reloadable keys applied together, restart keys reported,
invalid files ignored, and the file watch sees in-place edits and ConfigMap symlink swaps."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from auth_service.config.loader import load_settings
from auth_service.config.reload import (
    ConfigReloader,
    ReloadResult,
    diff,
    is_reloadable,
    merge_reloadable,
)
from auth_service.config.settings import Settings
from tests.support.wait import async_wait_for

BASE = """\
server:
  port: 8000
rate_limits:
  login_per_ip: {limit}
logging:
  level: {level}
"""


def write(path: Path, limit: str = "60/minute", level: str = "INFO", extra: str = "") -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(BASE.format(limit=limit, level=level) + extra)
    tmp.replace(path)  # how editors and config management write: a new inode


class Recorder:
    def __init__(self) -> None:
        self.applied: list[Settings] = []
        self.results: list[ReloadResult] = []

    async def apply(self, settings: Settings) -> None:
        self.applied.append(settings)

    async def notify(self, result: ReloadResult) -> None:
        self.results.append(result)


def reloader(path: Path, rec: Recorder) -> ConfigReloader:
    current = load_settings(path, {}).settings
    return ConfigReloader(current, path, rec.apply, rec.notify, environ={}, debounce_ms=50)


def test_reloadable_classification() -> None:
    assert is_reloadable("rate_limits.login_per_ip")
    assert is_reloadable("lockout.threshold")
    assert is_reloadable("alerting.channels")
    assert not is_reloadable("rate_limits.storage")
    assert not is_reloadable("server.port")
    assert is_reloadable("database.url")  # a drained pool swap
    assert is_reloadable("features.registration")
    assert not is_reloadable("redis.url")


def test_merge_keeps_restart_keys_at_running_values() -> None:
    old = Settings()
    new = Settings(server={"port": 9999}, lockout={"threshold": 9})  # type: ignore[arg-type]
    changed = diff(old, new)
    assert changed == ["lockout.threshold", "server.port"]
    merged = merge_reloadable(old, new, changed)
    assert merged.lockout.threshold == 9
    assert merged.server.port == 8000


async def test_applies_reloadable_and_reports_restart_required(tmp_path: Path) -> None:
    path = tmp_path / "auth.yaml"
    write(path)
    rec = Recorder()
    r = reloader(path, rec)
    write(path, limit="5/minute", level="WARNING", extra="")
    path.write_text(path.read_text().replace("port: 8000", "port: 8001"))
    result = await r.reload("test")
    assert result.result == "applied"
    assert result.applied == ["logging.level", "rate_limits.login_per_ip"]
    assert result.restart_required == ["server.port"]
    assert rec.applied[-1].rate_limits.login_per_ip == "5/minute"
    assert rec.applied[-1].server.port == 8000
    assert r.current.logging.level == "WARNING"


async def test_invalid_file_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "auth.yaml"
    write(path)
    rec = Recorder()
    r = reloader(path, rec)
    old_hash = r.hash
    write(path, limit="'5/minute'\n  bogus_key: 1")
    result = await r.reload("test")
    assert result.result == "error"
    assert result.error is not None
    assert "rate_limits.bogus_key" in result.error
    assert str(path) in result.error
    path.write_text("rate_limits: [unclosed\n")
    assert (await r.reload("test")).result == "error"
    assert rec.applied == []
    assert r.hash == old_hash
    assert r.current.rate_limits.login_per_ip == "60/minute"
    assert [x.result for x in rec.results] == ["error", "error"]


async def _wait_for(rec: Recorder, count: int, timeout: float = 10.0) -> None:
    await async_wait_for(lambda: len(rec.applied) >= count, timeout, f"{count} reloads")


async def _until_seen(rec: Recorder, change: Callable[[int], None]) -> None:
    """Make the change again until the watch sees it: the watch starts in the background and
    a change made before it looks is missed, so there is no moment to wait for."""

    attempts = itertools.count()

    async def seen() -> bool:
        change(next(attempts))
        # A few watch steps (50 ms) and the debounce: enough for a running watch to reload.
        await asyncio.sleep(0.2)
        return bool(rec.applied)

    await async_wait_for(seen, 10.0, "the watch to see the change", interval=0)


async def test_file_watch_sees_replacement(tmp_path: Path) -> None:
    path = tmp_path / "auth.yaml"
    write(path)
    rec = Recorder()
    r = reloader(path, rec)
    r.start()
    try:
        await _until_seen(rec, lambda _: write(path, limit="7/minute"))
        assert rec.applied[0].rate_limits.login_per_ip == "7/minute"
    finally:
        await r.stop()


async def test_file_watch_sees_configmap_symlink_swap(tmp_path: Path) -> None:
    """Kubernetes mounts a ConfigMap as auth.yaml -> ..data/auth.yaml, ..data -> ..<timestamp>;
    an update creates a new timestamp directory and renames a new ..data link over the old."""
    mount = tmp_path / "mount"
    first = mount / "..2026_01_01"
    first.mkdir(parents=True)
    write(first / "auth.yaml")
    (mount / "..data").symlink_to(first.name)
    (mount / "auth.yaml").symlink_to("..data/auth.yaml")
    path = mount / "auth.yaml"
    rec = Recorder()
    r = reloader(path, rec)
    r.start()

    def swap(attempt: int) -> None:
        update = mount / f"..2026_01_{attempt + 2:02}"
        update.mkdir()
        write(update / "auth.yaml", limit="9/minute")
        (mount / "..data_tmp").symlink_to(update.name)
        os.replace(mount / "..data_tmp", mount / "..data")

    try:
        await _until_seen(rec, swap)
        assert rec.applied[0].rate_limits.login_per_ip == "9/minute"
    finally:
        await r.stop()


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGHUP"), reason="no SIGHUP")
async def test_sighup_reloads(tmp_path: Path) -> None:
    import signal

    path = tmp_path / "auth.yaml"
    write(path)
    rec = Recorder()
    r = ConfigReloader(load_settings(path, {}).settings, None, rec.apply, rec.notify, environ={})
    r.config_file = path  # reload from the file but without a watch: only the signal triggers
    r.start()
    try:
        write(path, limit="11/minute")
        os.kill(os.getpid(), signal.SIGHUP)
        await _wait_for(rec, 1)
        assert rec.applied[0].rate_limits.login_per_ip == "11/minute"
    finally:
        await r.stop()
