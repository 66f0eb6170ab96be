"""database.ssl_mode / ssl_root_cert against a real PostgreSQL with ``ssl=on`` and a server
certificate signed by a test CA (ADR 0311): verify-full passes with the right CA and host
name and is refused, with one clear line, for another CA or another host name; the tools
the backup and DR commands run get the same through PGSSLMODE / PGSSLROOTCERT."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from auth_service.backup import pgtools
from auth_service.backup.errors import ToolFailed
from auth_service.config.settings import DatabaseSettings
from auth_service.config.tls import PostgresSslMode
from auth_service.db.engine import postgres_ssl
from tests.support.cli import cli_environment, one_line_error, run_cli
from tests.support.pg_cluster import cluster
from tests.support.tls import issue_certificate, self_signed_certificate

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SSL_IN_USE = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@dataclass
class TlsPostgres:
    port: int
    ca: Path
    other_ca: Path

    def url(self, host: str) -> str:
        return f"postgresql+asyncpg://{pgtools.SERVER_USER}@{host}:{self.port}/postgres"


@pytest.fixture
async def tls_postgres() -> AsyncIterator[TlsPostgres]:
    # Not under pytest's tmp dirs: the postgres OS user must read the server's key.
    certs = pgtools.Cluster.new_root("auth-pg-certs-")
    try:
        ca, _ = self_signed_certificate(certs, 30, name="pg-test-ca")
        other_ca, _ = self_signed_certificate(certs, 30, name="other-ca")
        # Issued for "localhost" only: 127.0.0.1 is another host name to verify-full.
        cert, key = issue_certificate(certs, (ca, certs / "pg-test-ca-30.key"), ips=())
        pgtools.chown_to_server_user(certs)
        async with cluster(
            "auth-pg-tls-", ssl="on", ssl_cert_file=str(cert), ssl_key_file=str(key)
        ) as c:
            yield TlsPostgres(c.port, ca, other_ca)
    finally:
        shutil.rmtree(certs, ignore_errors=True)


def _migrate(tmp: Path, url: str, mode: str, root_cert: Path | None) -> tuple[int, str, str]:
    env = cli_environment(tmp / "data")
    env.update(AUTH_DATABASE__URL=url, AUTH_DATABASE__SSL_MODE=mode)
    if root_cert is not None:
        env["AUTH_DATABASE__SSL_ROOT_CERT"] = str(root_cert)
    result = run_cli(["migrate"], env, tmp)  # never a traceback, whatever the outcome
    if result.returncode:
        return result.returncode, one_line_error(result), result.stdout
    return 0, "", result.stdout


async def test_verify_full_with_the_right_ca_and_host(
    tls_postgres: TlsPostgres, tmp_path: Path
) -> None:
    context = postgres_ssl(PostgresSslMode.verify_full, tls_postgres.ca)
    conn = await asyncpg.connect(tls_postgres.url("localhost").replace("+asyncpg", ""), ssl=context)
    try:
        assert await conn.fetchval(SSL_IN_USE) is True
    finally:
        await conn.close()
    code, _err, out = await asyncio.to_thread(
        _migrate, tmp_path, tls_postgres.url("localhost"), "verify-full", tls_postgres.ca
    )
    assert code == 0
    assert "database migrated" in out


async def test_another_ca_is_refused_with_one_clear_line(
    tls_postgres: TlsPostgres, tmp_path: Path
) -> None:
    code, line, _ = await asyncio.to_thread(
        _migrate, tmp_path, tls_postgres.url("localhost"), "verify-full", tls_postgres.other_ca
    )
    assert code == 1
    assert "the database's TLS certificate was refused" in line
    assert "CERTIFICATE_VERIFY_FAILED" in line
    assert "database.ssl_root_cert" in line


async def test_another_host_name_is_refused_under_verify_full_only(
    tls_postgres: TlsPostgres, tmp_path: Path
) -> None:
    by_ip = tls_postgres.url("127.0.0.1")
    code, line, _ = await asyncio.to_thread(
        _migrate, tmp_path, by_ip, "verify-full", tls_postgres.ca
    )
    assert code == 1
    assert "mismatch" in line
    assert "127.0.0.1" in line
    # verify-ca checks the signature alone: the same connection passes.
    code, _err, out = await asyncio.to_thread(
        _migrate, tmp_path, by_ip, "verify-ca", tls_postgres.ca
    )
    assert code == 0, _err
    assert "database" in out


async def test_the_backup_tools_get_the_same_tls_settings(tls_postgres: TlsPostgres) -> None:
    """What pg_dump / pg_basebackup / psql are run with (ConnInfo.env): libpq verifies too."""
    psql = pgtools.tool("psql")

    def settings(ca: Path) -> DatabaseSettings:
        return DatabaseSettings(ssl_mode=PostgresSslMode.verify_full, ssl_root_cert=ca)

    info = pgtools.ConnInfo.from_url(tls_postgres.url("localhost"), settings(tls_postgres.ca))
    assert info.env()["PGSSLMODE"] == "verify-full"
    argv = [psql, "-XAtc", SSL_IN_USE, info.libpq()]
    assert (await pgtools.run(argv, env=info.env())).strip() == "t"
    wrong = pgtools.ConnInfo.from_url(
        tls_postgres.url("localhost"), settings(tls_postgres.other_ca)
    )
    with pytest.raises(ToolFailed, match="certificate verify failed"):
        await pgtools.run([psql, "-XAtc", SSL_IN_USE, wrong.libpq()], env=wrong.env())
