"""Restore tests: restore a backup into a throwaway database and prove it is usable."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import text

from auth_service.audit.context import RequestContext
from auth_service.backup import pgtools
from auth_service.backup.catalog import Catalog, VerifyReport
from auth_service.backup.engines.postgres import restore_postgres
from auth_service.backup.engines.sqlite import restore_sqlite
from auth_service.backup.errors import BackupError
from auth_service.backup.manifest import Manifest
from auth_service.config.settings import Settings
from auth_service.db.revision import current_revision, head_revision


async def restore_test(
    settings: Settings,
    catalog: Catalog,
    backup_id: str | None = None,
    *,
    probe: tuple[str, str] | None = None,
) -> VerifyReport:
    """Restore into a temp SQLite file or a throwaway PostgreSQL cluster, then check schema
    at head, row counts against the manifest and, given ``probe``, that this user can log in."""
    manifest = await catalog.manifest(backup_id)
    report = VerifyReport(manifest.id)
    if manifest.engine == "sqlite":
        with tempfile.TemporaryDirectory(prefix="auth-restore-test-") as tmp:
            path = Path(tmp) / "auth.db"
            try:
                await restore_sqlite(catalog, manifest, path)
            except BackupError as exc:
                report.problems.append(str(exc))
                return report
            url = f"sqlite+aiosqlite:///{path}"
            await _check(settings, url, manifest, report, probe)
        return report
    if manifest.engine != "postgresql":
        raise BackupError(
            f"{manifest.id} is a {manifest.kind} backup: restore-test needs a full one"
        )
    cluster = pgtools.Cluster(
        pgtools.Cluster.new_root("auth-restore-test-"),
        pgtools.free_port(),
        settings.backup.pg_bin_dir,
    )
    try:
        try:
            await restore_postgres(catalog, manifest, cluster.data_dir)
            await cluster.start()
            await cluster.wait_ready(primary=True)
        except BackupError as exc:
            report.problems.append(str(exc))
            return report
        database = pgtools.ConnInfo.from_url(settings.database_url).database
        await _check(settings, cluster.conninfo.sqlalchemy_url(database), manifest, report, probe)
    finally:
        await cluster.destroy()
    return report


def with_database_url(settings: Settings, url: str) -> Settings:
    """The same settings pointed at another database (a restored copy, a promoted standby)."""
    database = settings.database.model_copy(update={"url": SecretStr(url)})
    return settings.model_copy(update={"database": database})


async def _check(
    settings: Settings,
    url: str,
    manifest: Manifest,
    report: VerifyReport,
    probe: tuple[str, str] | None,
) -> None:
    from auth_service.services import build_services

    services = build_services(with_database_url(settings, url))
    try:
        revision = await current_revision(services.db.engine)
        if revision != head_revision():
            report.problems.append(f"schema is at {revision}, expected head {head_revision()}")
        async with services.db.engine.connect() as conn:
            for table, expected in manifest.row_counts.items():
                got = (await conn.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar()  # noqa: S608
                if got != expected:
                    message = f"{table}: {got} rows, manifest says {expected}"
                    if manifest.engine == "postgresql":
                        # Counted at backup start; writes during the backup move them.
                        report.notes.append(message + " (writes during the backup)")
                    else:
                        report.problems.append(message)
                else:
                    report.notes.append(f"{table}: {got} rows as in the manifest")
        if probe is not None:
            try:
                await services.accounts.credentials.authenticate(
                    probe[0], probe[1], RequestContext(ip="127.0.0.1", request_id="restore-test")
                )
                report.notes.append("probe user authenticated")
            except Exception as exc:
                report.problems.append(f"probe user cannot authenticate ({type(exc).__name__})")
    finally:
        await services.close()
