"""`auth-service backup wal-push %p` as PostgreSQL's own `archive_command`.

A throwaway cluster archives through the real command line of
docs/operations/backup-restore.md, run by the server as the postgres OS user with the least it
needs: a config file without secrets and a backup key file only postgres can read (no master
key, no database URL). The archive is read back byte for byte; then a broken destination makes
archiving fail, PostgreSQL keeps the segment, and archiving catches up once it is fixed.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shlex
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from auth_service.backup import pgtools
from auth_service.backup.catalog import Catalog
from auth_service.config.backup import BackupDestination, BackupSettings
from tests.support.pg_cluster import (
    cluster,
    require_postgres_binaries,
    server_user_launcher,
)
from tests.support.services import service_missing
from tests.support.settings import write_config

# Throwaway PostgreSQL clusters: the server binaries, not the shared test server.
pytestmark = [pytest.mark.slow, pytest.mark.postgres]

Stats = dict[str, Any]


@dataclass
class ArchiveHost:
    """The files a database host holds for archiving, laid out as the runbook says."""

    root: Path
    launcher: Path  # stands in for /opt/auth-service/bin/auth-service (root's, 755)
    config: Path  # /etc/auth-service/wal-archive.yaml: destinations only, root:postgres 640
    key_file: Path  # /etc/auth-service/backup-key: postgres 600
    store: Path  # the file:// destination, written by postgres only
    scratch: Path  # postgres's own directory, for wal-fetch's output
    key: str

    def command(self, *args: str) -> str:
        """The shell command line PostgreSQL runs (archive_command, restore_command)."""
        argv = [str(self.launcher), "--config", str(self.config), "backup", *args]
        return f"AUTH_BACKUP__KEY_FILE={shlex.quote(str(self.key_file))} {shlex.join(argv)}"

    def catalog(self) -> Catalog:
        """The same archive, read in-process by the test."""
        settings = BackupSettings.model_validate(
            {"key": self.key, "destinations": [BackupDestination(url=f"file://{self.store}")]}
        )
        return Catalog(settings, self.scratch)


def _own(path: Path, mode: int, *, group_only: bool = False) -> None:
    """Give path to postgres (or only to its group, root keeping it) with mode."""
    if os.geteuid() == 0:
        pw = pwd.getpwnam(pgtools.SERVER_USER)
        os.chown(path, 0 if group_only else pw.pw_uid, pw.pw_gid)
    path.chmod(mode)


async def _host(root: Path) -> ArchiveHost:
    launcher = await server_user_launcher(root / "auth-service")
    etc = root / "etc"
    etc.mkdir()
    _own(etc, 0o750, group_only=True)
    key = secrets.token_urlsafe(32)
    key_file = etc / "backup-key"
    key_file.write_text(key + "\n")
    _own(key_file, 0o600)
    store, scratch = root / "store", root / "scratch"
    for directory in (store, scratch):
        directory.mkdir()
        _own(directory, 0o700)
    config = write_config(
        etc / "wal-archive.yaml", {"backup": {"destinations": [{"url": f"file://{store}"}]}}
    )
    _own(config, 0o640, group_only=True)
    return ArchiveHost(root, launcher, config, key_file, store, scratch, key)


async def _exit_code(*argv: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await asyncio.wait_for(proc.wait(), 60)


async def _assert_key_is_postgres_only(key_file: Path) -> None:
    if os.geteuid() != 0:
        # Only root can create the files as postgres and then read them as another user.
        service_missing("root", "showing that only the postgres OS user reads the key")
    info = key_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == pwd.getpwnam(pgtools.SERVER_USER).pw_uid
    assert await _exit_code(*pgtools.as_server_user(["cat", str(key_file)])) == 0
    assert await _exit_code("runuser", "-u", "nobody", "--", "cat", str(key_file)) != 0


async def _wait(c: pgtools.Cluster, done: Callable[[Stats], bool], what: str) -> Stats:
    """Poll pg_stat_archiver until done(row), on a new connection each time.

    New connections keep the postmaster's loop turning, as on a server in use: an archiver
    that died (an archive_command killed by a signal is FATAL to it) is restarted in about
    10 s instead of after the idle postmaster's 60 s nap.
    """
    deadline = time.monotonic() + 40
    while True:
        conn = await c.connect()
        try:
            stats = dict(await conn.fetchrow("SELECT * FROM pg_stat_archiver"))
        finally:
            await conn.close()
        if done(stats):
            return stats
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after 40 s; {stats}; log: {c.log_tail(8)}")
        await asyncio.sleep(0.1)


async def _switch(conn: Any, n: int) -> str:
    """Write, then close the current segment; returns the completed segment's name."""
    await conn.execute(
        "INSERT INTO t SELECT $1::int, md5(g::text) FROM generate_series(1, 500) g", n
    )
    name: str = await conn.fetchval("SELECT pg_walfile_name(pg_switch_wal())")
    return name


async def _archived_copy(host: ArchiveHost, name: str) -> bytes:
    fetched = host.root / f"{name}.fetched"
    await host.catalog().wal_fetch(name, fetched)
    try:
        return fetched.read_bytes()
    finally:
        fetched.unlink()


async def test_archive_command_archives_and_survives_a_broken_destination(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_postgres_binaries()
    # The server's environment carries none of the suite's settings, as on a database host:
    # what the command reads comes from its config file and key file.
    for var in list(os.environ):
        if var.startswith("AUTH_") and not var.startswith("AUTH_TEST_"):
            monkeypatch.delenv(var)
    root = pgtools.Cluster.new_root("auth-archive-host-")
    try:
        host = await _host(root)
        await _assert_key_is_postgres_only(host.key_file)
        command = host.command("wal-push", "%p")
        assert "'" not in command  # postgresql.auto.conf quotes the value with '
        async with cluster(
            "auth-archive-pg-",
            archive_mode="on",
            archive_command=command,
            wal_keep_size="256MB",  # no checkpoint recycles a segment before it is compared
        ) as c:
            pg_wal = c.data_dir / "pg_wal"
            conn = await c.connect()
            try:
                await conn.execute("CREATE TABLE t (n int, v text)")
                names = [await _switch(conn, n) for n in range(2)]
                stats = await _wait(
                    c, lambda s: s["last_archived_wal"] == names[-1], f"archiving {names}"
                )
                assert stats["failed_count"] == 0, c.log_tail()
                assert stats["archived_count"] >= len(names)
                assert set(names) <= set(await host.catalog().wal_names())
                for name in names:
                    assert await _archived_copy(host, name) == (pg_wal / name).read_bytes()

                # restore_command's side, run as postgres with the same files.
                out = host.scratch / "RECOVERYXLOG"
                fetch = host.command("wal-fetch", names[0], str(out))
                assert await _exit_code(*pgtools.as_server_user(["sh", "-c", fetch])) == 0
                assert out.read_bytes() == (pg_wal / names[0]).read_bytes()

                # The destination breaks (permissions, a full or unmounted disk): archiving
                # fails, PostgreSQL keeps the segment and retries.
                host.store.chmod(0)
                held = await _switch(conn, 2)
                stats = await _wait(
                    c, lambda s: s["last_failed_wal"] == held, f"a failed push of {held}"
                )
                assert stats["failed_count"] >= 1
                assert stats["last_archived_wal"] == names[-1]
                assert (pg_wal / "archive_status" / f"{held}.ready").exists()
                assert (pg_wal / held).exists()
                log = c.log_file.read_text(errors="replace")
                assert "archive command failed with exit code 1" in log
                assert f"{held}.sha256: storage error" in log  # the command's one line
                assert "Traceback" not in log

                # Fixed. The reload wakes the archiver (after three failures in a row it
                # naps for a minute).
                host.store.chmod(0o700)
                await conn.execute("SELECT pg_reload_conf()")
                await _wait(c, lambda s: s["last_archived_wal"] == held, f"catching up {held}")
                assert (pg_wal / "archive_status" / f"{held}.done").exists()
                assert await _archived_copy(host, held) == (pg_wal / held).read_bytes()
            finally:
                await conn.close()
            log = c.log_file.read_text(errors="replace")
            # wal-push leaves without finalisation (cli/entry.py): no run may die of a signal.
            assert "exit code 134" not in log
            assert "terminated by signal" not in log
    finally:
        host_store = root / "store"
        if host_store.exists():
            host_store.chmod(0o700)
        await asyncio.to_thread(shutil.rmtree, root, True)
