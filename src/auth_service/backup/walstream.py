"""Continuous WAL archiving from anywhere that reaches the database: pg_receivewal into a
spool directory, each finished segment sealed and uploaded, then removed from the spool."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from auth_service.backup import pgtools
from auth_service.backup.catalog import Catalog
from auth_service.backup.errors import ToolFailed
from auth_service.config.settings import Settings

SLOT = "auth_backup_wal"
_DONE = re.compile(r"^([0-9A-F]{24}|[0-9A-F]{8}\.history)$")


def spool_dir(settings: Settings) -> Path:
    return settings.backup.spool_dir or settings.data_dir / "wal-spool"


async def push_spool(
    catalog: Catalog,
    spool: Path,
    *,
    partial: bool = False,
    on_push: Callable[[str], None] | None = None,
) -> int:
    """Upload finished segments (and, when stopping, the one still being written)."""
    pushed = 0
    for path in await asyncio.to_thread(lambda: sorted(spool.iterdir())):
        if _DONE.match(path.name):
            await catalog.wal_push(path)
            path.unlink()
        elif partial and path.name.endswith(".partial"):
            await catalog.wal_push(path)
        else:
            continue
        pushed += 1
        if on_push is not None:
            on_push(path.name)
    return pushed


async def wal_stream(
    settings: Settings,
    catalog: Catalog,
    stop: asyncio.Event,
    *,
    poll_seconds: float = 1.0,
    on_push: Callable[[str], None] | None = None,
) -> None:
    """Run until ``stop`` is set; pg_receivewal's replication slot keeps WAL on the server
    while this is down, so a restart loses nothing."""
    spool = spool_dir(settings)
    spool.mkdir(parents=True, exist_ok=True)
    info = pgtools.ConnInfo.from_url(settings.database_url, settings.database)
    receivewal = pgtools.tool("pg_receivewal", settings.backup.pg_bin_dir)
    common = ["-d", info.libpq(), "-S", SLOT]
    await pgtools.run(
        [receivewal, *common, "--create-slot", "--if-not-exists", "-D", str(spool)],
        env=info.env(),
    )
    proc = await asyncio.create_subprocess_exec(
        receivewal,
        *common,
        "-D",
        str(spool),
        "--no-loop",
        "--synchronous",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **info.env()},
    )
    try:
        while not stop.is_set():
            await push_spool(catalog, spool, on_push=on_push)
            if proc.returncode is not None:
                assert proc.stderr is not None
                err = (await proc.stderr.read()).decode(errors="replace").strip()
                raise ToolFailed(f"pg_receivewal stopped: {err[-300:]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_seconds)
    finally:
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    await push_spool(catalog, spool, partial=True, on_push=on_push)
