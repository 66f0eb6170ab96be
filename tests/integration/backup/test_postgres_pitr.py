"""PostgreSQL on real throwaway clusters: base backup, continuous WAL, point-in-time recovery,
restore-test and retention, all through the `auth-service backup` command."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auth_service.backup import pgtools
from auth_service.backup.catalog import Catalog
from auth_service.backup.verify import with_database_url
from auth_service.config.settings import Settings
from tests.integration.backup.support import PASSWORD, can_login, register_users
from tests.support.pg_cluster import acli, cluster, create_database, start_cli
from tests.support.settings import TEST_MASTER_KEY, make_settings, write_config

# Throwaway PostgreSQL clusters: the server binaries, not the shared test server.
pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _configure(
    tmp_path: Path, url: str, key: str, *, store: str, **backup: Any
) -> tuple[Path, Settings]:
    """A config file for the CLI and the same settings in-process."""
    section = {"key": key, "destinations": [{"url": f"file://{tmp_path / store}"}], **backup}
    data: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "master_key": TEST_MASTER_KEY,
        "database": {"url": url},
        "passwords": {"argon2_memory_cost_kib": 1024, "argon2_time_cost": 1},
        "backup": section,
    }
    return write_config(tmp_path / "config.yaml", data), make_settings(
        tmp_path, url, backup=section
    )


async def _users(url: str) -> set[str]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return {r["email"] for r in await conn.fetch("SELECT email FROM users")}
    finally:
        await conn.close()


async def _wait_archived(catalog: Catalog, segment: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if segment in await catalog.wal_names():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"{segment} not archived after {timeout}s: {await catalog.wal_names()}")


async def test_full_backup_then_pitr_between_writes(tmp_path: Path, backup_key: str) -> None:
    async with cluster() as primary:
        url = await create_database(primary)
        config, settings = _configure(
            tmp_path, url, backup_key, store="store", keep_full=1, pitr_window_days=0
        )
        catalog = Catalog(settings.backup, settings.data_dir)

        streamer = await start_cli(
            config,
            "backup",
            "wal-stream",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await register_users(settings, ["before@example.com"])
            code, out = await acli(config, "backup", "run", "--kind", "full")
            assert code == 0, out

            await register_users(settings, ["between@example.com"])
            between = datetime.now(UTC)
            await asyncio.sleep(1.5)
            await register_users(settings, ["after@example.com"])
            conn = await primary.connect("auth")
            try:
                segment = await conn.fetchval("SELECT pg_walfile_name(pg_current_wal_lsn())")
                await conn.execute("SELECT pg_switch_wal()")
            finally:
                await conn.close()
            await _wait_archived(catalog, segment)
        finally:
            streamer.send_signal(signal.SIGTERM)
            out_bytes, _ = await asyncio.wait_for(streamer.communicate(), 60)
        assert streamer.returncode == 0, out_bytes.decode()

        # Point in time between the second and third registration.
        target_time = between + timedelta(milliseconds=700)
        restored = pgtools.Cluster(pgtools.Cluster.new_root("auth-pitr-"), pgtools.free_port())
        try:
            code, out = await acli(
                config,
                "backup",
                "restore",
                "--to-time",
                target_time.isoformat(),
                "--target",
                str(restored.data_dir),
                "--stage-wal",
                "--start-port",
                str(restored.port),
            )
            assert code == 0, out + restored.log_tail(20)
            restored_url = restored.conninfo.sqlalchemy_url("auth")
            assert await _users(restored_url) == {"before@example.com", "between@example.com"}
            assert await can_login(with_database_url(settings, restored_url), "between@example.com")
        finally:
            await restored.destroy()

        # The backup restores into a throwaway cluster and a known user logs in there.
        (tmp_path / "probe").write_text(PASSWORD)
        code, out = await acli(
            config,
            "backup",
            "verify",
            "--restore-test",
            "--probe-email",
            "before@example.com",
            "--probe-password-file",
            str(tmp_path / "probe"),
        )
        assert code == 0, out
        assert "probe user authenticated" in out

        # Retention: a second full backup makes the first (and the WAL before it) prunable,
        # never the newest backup or the WAL it needs.
        code, out = await acli(config, "backup", "run")
        assert code == 0, out
        archived = await catalog.wal_names()
        backups = json.loads((await acli(config, "backup", "list", "--format", "json"))[1])
        first, second = backups[0]["id"], backups[1]["id"]
        code, out = await acli(config, "backup", "prune")
        assert code == 0, out
        assert f"would delete backup {first}" in out
        assert "dry run" in out
        assert len(await catalog.manifests()) == 2
        code, out = await acli(config, "backup", "prune", "--confirm")
        assert code == 0, out
        assert [m.id for m in await catalog.manifests()] == [second]
        newest = await catalog.manifest(second)
        assert newest.start_wal is not None
        kept = await catalog.wal_names()

        # Segment names: timeline (8 hex digits), then log and segment numbers (16).
        segments = [n for n in archived if len(n) == 24]
        older = {n for n in segments if n[8:] < newest.start_wal[8:]}
        # WAL older than the newest backup was archived (the PITR above replayed it) and is
        # gone now; every segment from that backup's start on is still there.
        assert older
        assert older.isdisjoint(kept)
        assert set(segments) - older <= set(kept)
        code, out = await acli(config, "backup", "verify", second)
        assert code == 0, out


async def test_logical_export_restores_with_pg_restore(tmp_path: Path, backup_key: str) -> None:
    async with cluster() as pg:
        url = await create_database(pg)
        config, settings = _configure(tmp_path, url, backup_key, store="s")
        await register_users(settings, ["dump@example.com"])
        code, out = await acli(config, "backup", "run", "--kind", "logical")
        assert code == 0, out
        backup_id = json.loads((await acli(config, "backup", "list", "--format", "json"))[1])[0][
            "id"
        ]
        dump = tmp_path / "auth.pgc"
        code, out = await acli(config, "backup", "restore", backup_id, "--target", str(dump))
        assert code == 0, out
        assert "pg_restore" in out

        conn = await pg.connect()
        try:
            await conn.execute("CREATE DATABASE auth_copy")
        finally:
            await conn.close()
        await pgtools.run(
            [
                pgtools.tool("pg_restore"),
                "--no-owner",
                "-d",
                pg.conninfo.libpq("auth_copy"),
                str(dump),
            ]
        )
        copy_url = pg.conninfo.sqlalchemy_url("auth_copy")
        assert await _users(copy_url) == {"dump@example.com"}
        assert await can_login(with_database_url(settings, copy_url), "dump@example.com")
