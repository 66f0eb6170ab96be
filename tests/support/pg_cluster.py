"""Throwaway PostgreSQL clusters for backup and DR tests (initdb as the postgres user)."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import sys
import sysconfig
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine

from auth_service.backup import pgtools
from auth_service.backup.errors import ToolFailed
from auth_service.db.migrate import upgrade_to_head
from tests.support.services import service_missing


def require_postgres_binaries() -> None:
    try:
        pgtools.tool("initdb")
        pgtools.tool("pg_basebackup")
    except Exception as exc:
        service_missing("PostgreSQL server binaries", str(exc))
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        # PostgreSQL refuses to run as root; as root we switch to its OS user with runuser.
        service_missing("runuser (util-linux)", "running as root, PostgreSQL must run as postgres")


@asynccontextmanager
async def cluster(prefix: str = "auth-pg-", **settings: str) -> AsyncIterator[pgtools.Cluster]:
    """A fresh, started cluster on a free port; stopped and removed even on failure."""
    require_postgres_binaries()
    c = pgtools.Cluster(pgtools.Cluster.new_root(prefix), pgtools.free_port(), settings=settings)
    try:
        await c.initdb()
        await c.start()
        yield c
    finally:
        await c.destroy()


async def create_database(c: pgtools.Cluster, name: str = "auth") -> str:
    """Create and migrate the service's database; returns its SQLAlchemy URL."""
    conn = await c.connect()
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = c.conninfo.sqlalchemy_url(name)
    engine = create_async_engine(url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()
    return url


BIN = Path(__import__("sys").executable).parent


def clean_env() -> dict[str, str]:
    """The environment minus other tests' service settings: the config file decides."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AUTH_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }


async def start_cli(config: Path, *args: str, **kwargs: Any) -> asyncio.subprocess.Process:
    """Start the real `auth-service --config CONFIG ARGS` (a long-running one: wal-stream)."""
    return await asyncio.create_subprocess_exec(
        str(BIN / "auth-service"), "--config", str(config), *args, env=clean_env(), **kwargs
    )


async def acli(config: Path, *args: str, timeout: float = 240) -> tuple[int, str]:
    """Run the real `auth-service` command; returns (exit code, stdout+stderr)."""
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "auth-service"),
        "--config",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=clean_env(),
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode()


# ---- auth-service as the postgres OS user (archive_command / restore_command) -------------

# Interpreters to try when ours is out of the postgres user's reach (pyenv under /root).
SERVER_PYTHONS = ("/usr/local/bin/python{v}", "/usr/bin/python{v}", "/usr/bin/python3")

LAUNCHER = """#!/bin/sh
# auth-service for the postgres OS user: {python} (Python {v}, as the project's virtualenv)
# on the virtualenv's site-packages, whose .pth files put the project itself on the path.
# -I -S: no PYTHON* variables, no user or system site-packages ahead of the virtualenv's.
exec {python} -I -S -c '{bootstrap}
sys.argv[0] = "auth-service"
from auth_service.cli.entry import main
main()' {site_dirs} "$@"
"""

# Adds the site directories given as the first argument (':'-separated), .pth files included.
_BOOTSTRAP = """import site, sys
for d in sys.argv.pop(1).split(":"): site.addsitedir(d)"""

# The virtualenv's site directories (all but the top-up, made on demand) must be readable.
_READABLE = """import os, sys
for d in sys.argv[1].split(":")[:-1]:
    if not os.access(d, os.R_OK | os.X_OK):
        sys.exit(f"{d} is not readable")
"""

# Run as the postgres user on the virtualenv's packages: prints the requirements conditional on
# the interpreter (``python_full_version < '3.11.3'``: redis-py's async-timeout) that pip left
# out because it resolved the virtualenv for another patch release; else imports the service.
_PROBE = """
import importlib.metadata as md
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

dists = list(md.distributions())
have = {canonicalize_name(d.metadata["Name"]) for d in dists}
missing = {
    f"{req.name}{req.specifier}"
    for req in (Requirement(text) for d in dists for text in d.requires or ())
    if req.marker is not None and req.marker.evaluate({"extra": ""})
    and canonicalize_name(req.name) not in have
}
print(*sorted(missing))
if not missing:
    import auth_service.cli.main, auth_service.services
"""


async def server_user_python() -> tuple[str, str]:
    """A Python of this interpreter's minor version that the postgres OS user can execute,
    and its full version.

    Compiled wheels in the virtualenv are built for the minor version (cp311), so any patch
    release of it loads them. Skips (fails under AUTH_TEST_REQUIRE_SERVICES=1) when none is.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    check = (
        "import platform, sys; print(platform.python_version());"
        f" sys.exit(sys.version_info[:2] != {sys.version_info[:2]})"
    )
    candidates = [os.path.realpath(sys.executable), *(p.format(v=version) for p in SERVER_PYTHONS)]
    tried = []
    for python in dict.fromkeys(candidates):
        if not os.path.exists(python):
            continue
        try:
            argv = pgtools.as_server_user([python, "-I", "-S", "-c", check])
            return python, (await pgtools.run(argv, limit=30)).strip()
        except ToolFailed:
            tried.append(python)
    service_missing(
        f"a Python {version} the {pgtools.SERVER_USER} OS user can run",
        f"tried {', '.join(tried) or 'nothing'}; install Debian's python3 or a python{version}",
    )
    raise AssertionError("unreachable")


async def server_user_launcher(path: Path) -> Path:
    """Write an executable `auth-service` at ``path`` that the postgres OS user can run.

    The project's own interpreter may be unreachable for that user (a pyenv under /root, mode
    700); the launcher runs a reachable Python of the same minor version on the virtualenv's
    site-packages instead, plus ``<venv>/server-python-X.Y.Z`` for what that patch release
    needs beyond them (installed from PyPI on first use). Checked by importing the service as
    that user: a checkout or virtualenv it cannot read skips the test (fails under
    AUTH_TEST_REQUIRE_SERVICES=1).
    """
    python, full_version = await server_user_python()
    paths = sysconfig.get_paths()
    top_up = Path(sys.prefix) / f"server-python-{full_version}"
    site_dirs = ":".join(dict.fromkeys([paths["purelib"], paths["platlib"], str(top_up)]))
    probe = pgtools.as_server_user(
        [python, "-I", "-S", "-c", _READABLE + _BOOTSTRAP + _PROBE, site_dirs]
    )
    for attempt in range(2):
        try:
            missing = (await pgtools.run(probe)).split()
        except ToolFailed as exc:
            service_missing(
                f"auth-service for the {pgtools.SERVER_USER} OS user",
                f"{exc}; the checkout and its virtualenv must be readable "
                f"by {pgtools.SERVER_USER}: clone it outside private home directories",
            )
        if not missing:
            break
        try:
            if attempt:
                raise ToolFailed(f"still missing after installing into {top_up}")
            pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            await pgtools.run([*pip, "--no-deps", "--target", str(top_up), *missing])
        except ToolFailed as exc:
            service_missing(f"{', '.join(missing)} for {python} {full_version}", str(exc))
    path.write_text(
        LAUNCHER.format(
            python=shlex.quote(python),
            v=f"{sys.version_info.major}.{sys.version_info.minor}",
            bootstrap=_BOOTSTRAP,
            site_dirs=shlex.quote(site_dirs),
        )
    )
    path.chmod(0o755)
    return path
