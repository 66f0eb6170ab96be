"""The embedded SQLite database on a disk that fills up, then gets space back.

The database file lives on a small tmpfs the test mounts (as root; where mounting is refused
the test skips and says so, an expected skip in tests/support/required.py). Once nothing is
left on it, writes are answered 503 `database-unavailable`, never a 500; reads still work;
freeing space brings writes back without a restart; and afterwards the file passes
`PRAGMA integrity_check` and holds exactly the accounts whose registration was accepted (202).
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import Api, running_api
from tests.support.problems import assert_problem
from tests.support.settings import PASSWORD, make_settings

CHUNK = 64 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted for this test, unmounted afterwards."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    tool = shutil.which("mount")
    if tool is None:
        pytest.skip("cannot mount a tmpfs for the full-disk test: no mount command")
    result = subprocess.run(
        [tool, "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        reason = result.stderr.strip() or f"exit {result.returncode}"
        pytest.skip(f"cannot mount a tmpfs for the full-disk test (needs root): {reason}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


def _fill(directory: Path) -> Path:
    """Write a file until the filesystem has no byte left; the file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        size = CHUNK
        while size:
            try:
                os.write(fd, b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size //= 2  # down to the last byte a page still holds
    finally:
        os.close(fd)
    return filler


async def _register(api: Api) -> tuple[str, httpx.Response]:
    email = f"disk-{uuid.uuid4().hex[:10]}@example.com"
    return email, await api.register(email, PASSWORD)


async def test_full_disk_answers_503_keeps_the_file_sound_and_recovers(
    tmp_path: Path, small_disk: Path, sqlite_template: Path
) -> None:
    database = small_disk / "auth.db"
    shutil.copy(sqlite_template, database)
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{database}")
    created: list[str] = []
    refused: list[str] = []
    async with running_api(settings) as api:
        user = await api.user()
        created.append(user["email"])
        filler = _fill(small_disk)

        # Free pages inside the file and its WAL may take a few writes before one needs
        # a new block of the disk; from then on, every write is refused.
        for _ in range(200):
            email, r = await _register(api)
            if r.status_code == 503:
                refused.append(email)
                break
            assert r.status_code == 202, r.text
            created.append(email)
        assert refused, "the disk never ran out"
        assert_problem(r, 503, "database-unavailable")
        assert r.headers["retry-after"]
        email, again = await _register(api)
        assert_problem(again, 503, "database-unavailable")
        refused.append(email)
        login = await api.login(user["email"], PASSWORD)
        assert_problem(login, 503, "database-unavailable")  # the new session is a write
        # Reads do not need space: the JWKS and a token's own session still answer.
        assert (await api.client.get("/.well-known/jwks.json")).status_code == 200
        me = await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))
        assert me.status_code == 200, me.text

        filler.unlink()
        email, r = await _register(api)
        assert r.status_code == 202, r.text  # the same process writes again
        created.append(email)
        assert (await api.login(user["email"], PASSWORD)).status_code == 200

    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {row[0] for row in conn.execute("SELECT email FROM users")}
    assert stored == set(created)
    assert not stored & set(refused)
