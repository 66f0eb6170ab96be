from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from auth_service.observability.info import build_commit, config_hash
from tests.support.settings import make_settings


def test_config_hash_is_stable_and_ignores_secret_values(tmp_path: Path) -> None:
    a = make_settings(tmp_path, "postgresql+asyncpg://app:first-secret@db/auth")
    b = make_settings(tmp_path, "postgresql+asyncpg://app:other-secret@db/auth")
    assert config_hash(a) == config_hash(a.model_copy())
    assert config_hash(a) == config_hash(b)
    assert len(config_hash(a)) == 16
    b.master_key = SecretStr("another")
    assert config_hash(a) == config_hash(b)


def test_config_hash_changes_with_a_setting(tmp_path: Path) -> None:
    a = make_settings(tmp_path, "sqlite+aiosqlite:///x.db")
    b = make_settings(tmp_path, "sqlite+aiosqlite:///x.db", lockout={"threshold": 9})
    assert config_hash(a) != config_hash(b)


def test_build_commit_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_BUILD_COMMIT", "0123abcd\n")
    assert build_commit() == "0123abcd"
    monkeypatch.setenv("AUTH_BUILD_COMMIT", 'a"b{c}' + "f" * 60)
    assert build_commit() == "abc" + "f" * 37
    monkeypatch.delenv("AUTH_BUILD_COMMIT")
    assert build_commit() == "unknown"  # a source checkout has no generated _build.py
