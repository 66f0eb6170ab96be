"""SQLite: online snapshot, restore, verify and restore-test through the CLI, on every storage."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from auth_service.backup.catalog import Catalog
from auth_service.backup.verify import with_database_url
from auth_service.config.settings import Settings
from auth_service.db.revision import head_revision
from auth_service.keys.models import SigningKey
from auth_service.services import build_services
from tests.integration.backup.support import (
    assert_verify_and_restore,
    can_login,
    cli,
    register_users,
    run,
    sqlite_setup,
)
from tests.support.settings import TEST_MASTER_KEY


def test_backup_verify_restore_round_trip(
    tmp_path: Path, sqlite_template: Path, backup_key: str, destination: dict[str, Any]
) -> None:
    settings, config = sqlite_setup(tmp_path, sqlite_template, backup_key, destination)
    emails = [f"u{i}@example.com" for i in range(3)]
    run(register_users(settings, emails))

    result = cli(config, "backup", "run", "--kind", "full")
    assert result.exit_code == 0, result.output
    listed = cli(config, "backup", "list", "--format", "json")
    backups = json.loads(listed.stdout)
    assert [b["kind"] for b in backups] == ["full"]
    assert backups[0]["engine"] == "sqlite"
    backup_id = backups[0]["id"]

    assert_verify_and_restore(tmp_path, settings, config, backup_id, emails)


def test_restore_test_fails_on_damaged_backup(
    tmp_path: Path, sqlite_template: Path, backup_key: str
) -> None:
    dest = {"url": f"file://{tmp_path / 'store'}"}
    settings, config = sqlite_setup(tmp_path, sqlite_template, backup_key, dest)
    run(register_users(settings, ["a@example.com"]))
    assert cli(config, "backup", "run").exit_code == 0
    manifest = run(Catalog(settings.backup, settings.data_dir).manifest())
    obj = tmp_path / "store" / manifest.objects[0].name
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0x40
    obj.write_bytes(bytes(data))

    result = cli(config, "backup", "verify", "--restore-test")
    assert result.exit_code == 1
    assert f"object {manifest.objects[0].name} is damaged" in result.output
    assert "failed authentication" in result.output
    assert "Traceback" not in result.output


def test_wrong_key_and_missing_object_fail_clearly(
    tmp_path: Path, sqlite_template: Path, backup_key: str
) -> None:
    import secrets

    dest = {"url": f"file://{tmp_path / 'store'}"}
    settings, config = sqlite_setup(tmp_path, sqlite_template, backup_key, dest)
    assert cli(config, "backup", "run").exit_code == 0
    manifest = run(Catalog(settings.backup, settings.data_dir).manifest())

    _, other = (
        sqlite_setup(tmp_path / "o", sqlite_template, secrets.token_urlsafe(32), dest)
        if (tmp_path / "o").mkdir() is None
        else (None, None)
    )
    assert other is not None
    result = cli(other, "backup", "verify", manifest.id)
    assert result.exit_code == 1
    assert f"backup key {manifest.key_id} is not configured" in result.output

    (tmp_path / "store" / manifest.objects[0].name).unlink()
    result = cli(config, "backup", "verify", manifest.id)
    assert result.exit_code == 1
    assert "object not found" in result.output

    result = cli(config, "backup", "verify", "20000101T000000Z-full-dead")
    assert result.exit_code == 1
    assert "`auth-service backup list`" in result.output


def test_key_rotation_keeps_old_backups_readable(
    tmp_path: Path, sqlite_template: Path, backup_key: str
) -> None:
    import secrets

    dest = {"url": f"file://{tmp_path / 'store'}"}
    settings, config = sqlite_setup(tmp_path, sqlite_template, backup_key, dest)
    assert cli(config, "backup", "run").exit_code == 0
    old_id = run(Catalog(settings.backup, settings.data_dir).manifest()).id

    rotated = tmp_path / "rot"
    rotated.mkdir()
    _, new_config = sqlite_setup(rotated, sqlite_template, secrets.token_urlsafe(32), dest)
    import yaml

    data = yaml.safe_load(new_config.read_text())
    data["backup"]["previous_keys"] = backup_key
    new_config.write_text(yaml.safe_dump(data))
    assert cli(new_config, "backup", "run").exit_code == 0
    assert cli(new_config, "backup", "verify", old_id).exit_code == 0
    backups = json.loads(cli(new_config, "backup", "list", "--format", "json").stdout)
    assert len({b["key_id"] for b in backups}) == 2


def test_config_backup_restores_the_files_and_sealed_keys(
    tmp_path: Path, sqlite_template: Path, backup_key: str
) -> None:
    dest = {"url": f"file://{tmp_path / 'store'}"}
    settings, config = sqlite_setup(tmp_path, sqlite_template, backup_key, dest)
    # A config file without secrets (those stay in secret files, never in a backup).
    features = tmp_path / "features.yaml"
    features.write_text("features:\n  registration: false\n")
    data = yaml.safe_load(config.read_text())
    data["backup"]["config_files"] = [str(features)]
    config.write_text(yaml.safe_dump(data))
    keys = run(_signing_keys(settings))
    assert len(keys) >= 2  # an active and a next key for each signing algorithm

    result = cli(config, "backup", "run", "--kind", "config")
    assert result.exit_code == 0, result.output
    (listed,) = json.loads(cli(config, "backup", "list", "--format", "json").stdout)
    manifest = run(Catalog(settings.backup, settings.data_dir).manifest(listed["id"]))
    assert manifest.kind == "config"
    assert manifest.schema_revision == head_revision()
    assert manifest.row_counts == {"signing_keys": len(keys)}
    restored = tmp_path / "restored.tar"
    result = cli(config, "backup", "restore", manifest.id, "--target", str(restored))
    assert result.exit_code == 0, result.output

    with tarfile.open(restored) as tar:
        assert sorted(tar.getnames()) == ["config/features.yaml", "signing_keys.json"]
        copied = _read(tar, "config/features.yaml")
        sealed = json.loads(_read(tar, "signing_keys.json"))
    assert copied == features.read_bytes()
    assert sealed["schema_revision"] == manifest.schema_revision
    assert {k["kid"]: k["private_key_encrypted"] for k in sealed["signing_keys"]} == keys
    for text in (copied.decode(), json.dumps(sealed)):
        assert backup_key not in text
        assert TEST_MASTER_KEY not in text
        assert "PRIVATE KEY" not in text


def _read(tar: tarfile.TarFile, name: str) -> bytes:
    member = tar.extractfile(name)
    assert member is not None
    return member.read()


async def _signing_keys(settings: Settings) -> dict[str, str]:
    """Create the signing keys as a first start does; kid -> the sealed key as stored."""
    services = build_services(settings)
    try:
        await services.keys.ensure_keys()
        async with services.db.sessionmaker() as s:
            rows = (await s.execute(select(SigningKey.kid, SigningKey.private_key_encrypted))).all()
    finally:
        await services.close()
    return {kid: str(sealed) for kid, sealed in rows}


def test_second_destination_is_a_usable_copy(
    tmp_path: Path, sqlite_template: Path, backup_key: str, s3_endpoint: str
) -> None:
    import uuid

    import yaml

    from tests.support.object_store import s3_destination

    local = {"url": f"file://{tmp_path / 'store'}"}
    remote = s3_destination(s3_endpoint, f"dr-{uuid.uuid4().hex[:12]}")
    settings, config = sqlite_setup(tmp_path, sqlite_template, backup_key, local)
    data = yaml.safe_load(config.read_text())
    data["backup"]["destinations"] = [local, remote]
    config.write_text(yaml.safe_dump(data))
    run(register_users(settings, ["copy@example.com"]))
    assert cli(config, "backup", "run").exit_code == 0
    assert cli(config, "backup", "verify").exit_code == 0

    manifest = run(Catalog(settings.backup, settings.data_dir).manifest())
    obj = tmp_path / "store" / manifest.objects[0].name
    obj.write_bytes(obj.read_bytes()[:-50])
    result = cli(config, "backup", "verify")
    assert result.exit_code == 1
    assert f"file://{tmp_path / 'store'}: object {manifest.objects[0].name} is damaged" in (
        " ".join(result.output.split())
    )
    assert "s3://" not in result.output

    # The DR copy restores: make it the primary and restore from it.
    data["backup"]["destinations"] = [remote, local]
    config.write_text(yaml.safe_dump(data))
    target = tmp_path / "from-dr.db"
    result = cli(config, "backup", "restore", manifest.id, "--target", str(target))
    assert result.exit_code == 0, result.output
    restored = with_database_url(settings, f"sqlite+aiosqlite:///{target}")
    assert run(can_login(restored, "copy@example.com"))


def test_schedule_once_backs_up_and_verifies(
    tmp_path: Path, sqlite_template: Path, backup_key: str
) -> None:
    dest = {"url": f"file://{tmp_path / 'store'}"}
    settings, config = sqlite_setup(tmp_path, sqlite_template, backup_key, dest)
    result = cli(config, "backup", "schedule", "--once")
    assert result.exit_code == 0, result.output
    manifest = run(Catalog(settings.backup, settings.data_dir).manifest())
    assert f"backup {manifest.id} done" in result.output
    assert f"verified {manifest.id}" in result.output


def test_restore_to_end_needs_postgresql_and_excludes_to_time(
    tmp_path: Path, sqlite_template: Path, backup_key: str
) -> None:
    dest = {"url": f"file://{tmp_path / 'store'}"}
    _, config = sqlite_setup(tmp_path, sqlite_template, backup_key, dest)
    assert cli(config, "backup", "run").exit_code == 0
    target = str(tmp_path / "restored.db")

    result = cli(config, "backup", "restore", "--to-end", "--target", target)
    assert result.exit_code == 1
    assert "point-in-time recovery needs PostgreSQL" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "restored.db").exists()

    both = ("--to-end", "--to-time", "2026-01-31T12:00:00Z")
    result = cli(config, "backup", "restore", *both, "--target", target)
    assert result.exit_code == 1
    assert "give --to-time or --to-end, not both" in result.output
