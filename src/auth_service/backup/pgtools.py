"""PostgreSQL's own tools (initdb, pg_ctl, pg_basebackup, pg_receivewal, pg_rewind), run as
asyncio subprocesses, plus throwaway local clusters for restore tests and DR drills.

The server refuses to run as root, so when we are root the server-side tools run as the
``postgres`` OS user through ``runuser``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlparse

import asyncpg  # type: ignore[import-untyped]

from auth_service.backup.errors import ToolFailed

if TYPE_CHECKING:
    from auth_service.config.settings import DatabaseSettings

SERVER_USER = "postgres"
WAL_SEGMENT_BYTES = 16 * 1024 * 1024  # initdb's default; the clusters we back up keep it


def lsn_bytes(lsn: str) -> int:
    """A PostgreSQL LSN ('16/B374D848') as a byte position in the WAL."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def wal_segment_name(timeline: int, lsn: str) -> str:
    """The WAL segment file holding ``lsn`` on ``timeline``: 16/B374D848 on timeline 1 is in
    0000000100000016000000B3."""
    segment = lsn_bytes(lsn) // WAL_SEGMENT_BYTES
    per_log = 0x100000000 // WAL_SEGMENT_BYTES
    return f"{timeline:08X}{segment // per_log:08X}{segment % per_log:08X}"


def pg_bin_dir(configured: Path | None = None) -> Path | None:
    """The configured binaries, else the newest /usr/lib/postgresql/N/bin, else PATH."""
    if configured is not None:
        return configured
    base = Path("/usr/lib/postgresql")
    if base.is_dir():
        versions = sorted(
            (p for p in base.iterdir() if (p / "bin" / "pg_ctl").exists()),
            key=lambda p: int(p.name) if p.name.isdigit() else 0,
        )
        if versions:
            return versions[-1] / "bin"
    return None


def tool(name: str, bin_dir: Path | None = None) -> str:
    bin_dir = pg_bin_dir(bin_dir)
    if bin_dir is not None and (bin_dir / name).exists():
        return str(bin_dir / name)
    found = shutil.which(name)
    if found is None:
        raise ToolFailed(
            f"{name} not found: install the PostgreSQL server package or set backup.pg_bin_dir"
        )
    return found


def as_server_user(argv: Sequence[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", SERVER_USER, "--", *argv]
    return list(argv)


def chown_to_server_user(path: Path) -> None:
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam(SERVER_USER)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid, follow_symlinks=False)


async def run(argv: Sequence[str], *, env: dict[str, str] | None = None, limit: float = 300) -> str:
    """Run a tool to completion; ToolFailed with its last lines of output on failure."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ToolFailed(f"{Path(argv[-1]).name} did not finish within {limit:.0f}s") from None
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        lines = text.strip().splitlines()
        # The tool's own error line beats the last lines of a chatty child (single-user mode).
        errors = [ln for ln in lines if "error" in ln.lower() or "fatal" in ln.lower()]
        tail = " | ".join((errors or lines)[-3:])
        name = argv[4] if argv[0] == "runuser" and len(argv) > 4 else argv[0]
        raise ToolFailed(f"{Path(name).name} failed (exit {proc.returncode}): {tail}")
    return text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ConnInfo:
    """libpq connection parameters taken from a database URL (any SQLAlchemy driver)."""

    host: str
    port: int
    user: str
    password: str | None
    database: str
    # database.ssl_mode / ssl_root_cert (ADR 0311): libpq's sslmode and sslrootcert, for the
    # tools (PGSSLMODE, PGSSLROOTCERT) and asyncpg (the DSN's query) alike.
    sslmode: str | None = None
    sslrootcert: str | None = None

    @classmethod
    def from_url(cls, url: str, tls: DatabaseSettings | None = None) -> ConnInfo:
        parsed = urlparse(url.replace("+asyncpg", "").replace("+psycopg", ""))
        root_cert = tls.ssl_root_cert if tls is not None else None
        return cls(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or SERVER_USER,
            password=parsed.password,
            database=(parsed.path or "/postgres").lstrip("/") or "postgres",
            sslmode=tls.ssl_mode.value if tls is not None else None,
            sslrootcert=str(root_cert) if root_cert is not None else None,
        )

    def _tls(self) -> dict[str, str]:
        return {
            k: v for k, v in (("sslmode", self.sslmode), ("sslrootcert", self.sslrootcert)) if v
        }

    def libpq(self, database: str | None = None) -> str:
        db = database or self.database
        tls = "".join(f" {k}={v}" for k, v in self._tls().items())
        return f"host={self.host} port={self.port} user={self.user} dbname={db}{tls}"

    def env(self) -> dict[str, str]:
        env = {f"PG{k.upper()}": v for k, v in self._tls().items()}
        return {**env, "PGPASSWORD": self.password} if self.password else env

    def _dsn(self, scheme: str, database: str | None) -> str:
        auth = quote(self.user) + (f":{quote(self.password)}" if self.password else "")
        return f"{scheme}://{auth}@{self.host}:{self.port}/{database or self.database}"

    def asyncpg_dsn(self, database: str | None = None) -> str:
        """For asyncpg.connect: TLS travels in the DSN's query."""
        query = "&".join(f"{k}={quote(v)}" for k, v in self._tls().items())
        dsn = self._dsn("postgresql", database)
        return f"{dsn}?{query}" if query else dsn

    def sqlalchemy_url(self, database: str | None = None) -> str:
        """The service's database URL for this node (what failover writes to a URL file).
        No TLS in it: the service takes TLS from database.ssl_mode and ssl_root_cert only."""
        return self._dsn("postgresql+asyncpg", database)


@dataclass
class Cluster:
    """A local PostgreSQL instance in its own directory, on its own port, owned by postgres."""

    root: Path
    port: int
    bin_dir: Path | None = None
    settings: dict[str, str] = field(default_factory=dict)
    data: Path | None = None

    @property
    def data_dir(self) -> Path:
        return self.data or self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def conninfo(self) -> ConnInfo:
        return ConnInfo("127.0.0.1", self.port, SERVER_USER, None, "postgres")

    @classmethod
    def new_root(cls, prefix: str = "auth-pg-") -> Path:
        # Not under pytest's tmp dirs: those are private to root and postgres cannot enter.
        root = Path(tempfile.mkdtemp(prefix=prefix))
        root.chmod(0o755)
        return root

    async def initdb(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        chown_to_server_user(self.root)
        await run(
            as_server_user(
                [
                    tool("initdb", self.bin_dir),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SERVER_USER,
                    "--auth=trust",
                    "--no-sync",
                    # pg_rewind needs checksums (or wal_log_hints) to rewind a failed primary.
                    "--data-checksums",
                    "-E",
                    "UTF8",
                ]
            )
        )
        if self.settings:
            self.write_conf(self.settings)

    def write_conf(self, extra: dict[str, str]) -> None:
        """Persist settings in postgresql.auto.conf (single-user runs by pg_rewind see them)."""
        lines = "".join(f"{k} = '{v}'\n" for k, v in extra.items())
        conf = self.data_dir / "postgresql.auto.conf"
        with conf.open("a") as fh:
            fh.write(lines)

    async def start(self, *, wait: bool = True) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        chown_to_server_user(self.socket_dir)
        self.log_file.touch()
        chown_to_server_user(self.log_file)
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.socket_dir}"
        argv = [
            tool("pg_ctl", self.bin_dir),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            opts,
            "-w" if wait else "-W",
            "-t",
            "120",
            "start",
        ]
        try:
            await run(as_server_user(argv), limit=150)
        except ToolFailed as exc:
            raise ToolFailed(f"{exc} | log: {self.log_tail()}") from None

    async def stop(self, mode: str = "fast") -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        await run(
            as_server_user(
                [tool("pg_ctl", self.bin_dir), "-D", str(self.data_dir), "-m", mode, "-w", "stop"]
            ),
            limit=120,
        )

    async def promote(self) -> None:
        await run(
            as_server_user(
                [
                    tool("pg_ctl", self.bin_dir),
                    "-D",
                    str(self.data_dir),
                    "-w",
                    "-t",
                    "60",
                    "promote",
                ]
            ),
            limit=90,
        )

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def connect(self, database: str = "postgres") -> asyncpg.Connection:
        return await asyncpg.connect(self.conninfo.asyncpg_dsn(database), timeout=10)

    async def wait_ready(self, *, primary: bool, within: float = 120) -> None:
        """Wait until the server accepts connections (and has left recovery if primary)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                conn = await self.connect()
                try:
                    in_recovery = await conn.fetchval("SELECT pg_is_in_recovery()")
                finally:
                    await conn.close()
                if not primary or not in_recovery:
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise ToolFailed(
                    f"PostgreSQL on port {self.port} not ready after {within:.0f}s: "
                    f"{self.log_tail()}"
                )
            await asyncio.sleep(0.2)

    async def destroy(self) -> None:
        with contextlib.suppress(ToolFailed, OSError):
            await self.stop("immediate")
        await asyncio.to_thread(shutil.rmtree, self.root, True)
