"""`auth-service apply` and `auth-service export` as the runbook runs them
(docs/operations/config-as-code.md), on SQLite and PostgreSQL: the plan, apply, a second
apply that changes and writes nothing, a dry run that writes nothing, an unknown key named by
its path, export -> apply round trip, prune only when asked, and a failure part way through
that leaves nothing applied."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from auth_service.services import build_services
from tests.support.cli import cli_environment, one_line_error, run_cli
from tests.support.settings import TEST_MASTER_KEY, make_settings, write_config

# The runbook's development settings: a webhook receiver on loopback over http, cheap hashes.
CONFIG: dict[str, Any] = {
    "webhooks": {"allow_http": True, "allowed_networks": ["127.0.0.1/32"]},
    "passwords": {"argon2_memory_cost_kib": 1024, "argon2_time_cost": 1},
}
WEB_SECRET = "web-client-secret-0123456789-abcdefghij"
GOOGLE_SECRET = "google-secret-value"
ADMIN_PASSWORD = "correct horse battery staple 9"
HOOK_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="


def _realm() -> dict[str, Any]:
    return {
        "version": 1,
        "roles": [
            {"name": "admin", "description": "Full access to the admin API"},
            {"name": "auditor", "description": "Reads the audit log"},
        ],
        "clients": [
            {
                "client_id": "web",
                "name": "Web app",
                "type": "confidential",
                "redirect_uris": ["https://app.example.com/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "scope": "openid profile email",
                "client_secret": {"file": "secrets/web-client-secret"},
            },
            {
                "client_id": "cli",
                "name": "Command line tool",
                "type": "public",
                "redirect_uris": ["http://127.0.0.1/callback"],
            },
        ],
        "connectors": [
            {
                "id": "google",
                "name": "Google",
                "type": "google",
                "client_id": "1234.apps.googleusercontent.com",
                "client_secret": {"env": "GOOGLE_CLIENT_SECRET"},
            }
        ],
        "webhooks": [
            {
                "url": "http://127.0.0.1:9/hooks/auth",
                "event_types": ["user.registered"],
                "secret": {"env": "CRM_WEBHOOK_SECRET"},
            }
        ],
        "admins": [{"email": "ops@example.com", "password": {"file": "secrets/ops-password"}}],
    }


class Operator:
    """The runbook's shell: a folder with realm.yaml and its secrets, the CLI on a database."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.dir = tmp_path
        self.database_url = database_url
        (tmp_path / "secrets").mkdir()
        (tmp_path / "secrets" / "web-client-secret").write_text(WEB_SECRET + "\n")
        (tmp_path / "secrets" / "ops-password").write_text(ADMIN_PASSWORD + "\n")
        self.config = write_config(tmp_path / "auth.yaml", CONFIG)
        self.env = cli_environment(tmp_path / "data")
        self.env.update(
            AUTH_DATABASE__URL=database_url,
            AUTH_MASTER_KEY=TEST_MASTER_KEY,
            GOOGLE_CLIENT_SECRET=GOOGLE_SECRET,
            CRM_WEBHOOK_SECRET=HOOK_SECRET,
        )

    def write(self, realm: dict[str, Any], name: str = "realm.yaml") -> str:
        (self.dir / name).write_text(yaml.safe_dump(realm, sort_keys=False))
        return name

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = run_cli(["--config", str(self.config), *args], self.env, self.dir)
        for secret in (WEB_SECRET, GOOGLE_SECRET, ADMIN_PASSWORD, HOOK_SECRET):
            assert secret not in result.stdout + result.stderr
        return result

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def export(self) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load(self.ok("export"))
        return doc

    async def audit_count(self) -> int:
        services = build_services(make_settings(self.dir, self.database_url, **CONFIG))
        try:
            return (await services.audit.query(limit=1))[1]
        finally:
            await services.close()

    async def client_secret_works(self, client_id: str, secret: str) -> bool:
        services = build_services(make_settings(self.dir, self.database_url, **CONFIG))
        try:
            return await services.oauth.clients.authenticate(client_id, secret) is not None
        finally:
            await services.close()


EMPTY = {
    "version": 1,
    "roles": [{"name": "admin", "description": "Full access to the admin API"}],
    "clients": [],
    "connectors": [],
    "webhooks": [],
    "admins": [],
}


async def test_plan_dry_run_apply_and_a_second_apply_that_writes_nothing(
    tmp_path: Path, database_url: str
) -> None:
    op = Operator(tmp_path, database_url)
    op.write(_realm())

    planned = op.ok("apply", "-f", "realm.yaml", "--dry-run")
    lines = planned.splitlines()
    for head in (
        "= unchanged role admin",
        "+ create role auditor",
        "+ create connector google",
        "+ create client web",
        "+ create client cli",
        "+ create webhook http://127.0.0.1:9/hooks/auth",
        "+ create admin ops@example.com",
    ):
        assert head in lines, planned
    assert '    redirect_uris: null -> ["https://app.example.com/callback"]' in lines
    assert "    client_secret: (set)" in lines
    assert "Plan: 6 to create, 0 to update, 0 to delete, 1 unchanged." in lines
    assert lines[-1] == "Dry run: nothing was written."
    # The dry run wrote nothing, not even an audit event.
    assert op.export() == EMPTY
    assert await op.audit_count() == 0

    applied = op.ok("apply", "-f", "realm.yaml")
    assert applied.splitlines()[-1] == "Applied."
    assert await op.client_secret_works("web", WEB_SECRET)
    events = await op.audit_count()
    assert events == 7  # one per creation, and the summary

    again = op.ok("apply", "-f", "realm.yaml")
    assert again.splitlines()[-1] == "No changes: the database matches the file."
    assert "= unchanged client web" in again.splitlines()
    assert await op.audit_count() == events

    exported = op.export()
    assert [c["client_id"] for c in exported["clients"]] == ["web", "cli"]
    assert exported["clients"][0]["client_secret"] == {"keep": True}
    assert exported["admins"] == [{"email": "ops@example.com", "password": {"keep": True}}]


async def test_a_change_shows_its_fields_and_deletion_needs_prune(
    tmp_path: Path, database_url: str
) -> None:
    op = Operator(tmp_path, database_url)
    op.ok("apply", "-f", op.write(_realm()))

    realm = _realm()
    realm["clients"][0]["redirect_uris"] = ["https://app.example.com/cb2"]
    (tmp_path / "secrets" / "web-client-secret").write_text("a-new-web-secret-" + "x" * 32)
    realm["connectors"] = []
    del realm["webhooks"]  # a section left out is not managed: never pruned
    op.write(realm)
    planned = op.ok("apply", "-f", "realm.yaml").splitlines()
    assert "~ update client web" in planned
    assert (
        '    redirect_uris: ["https://app.example.com/callback"] -> '
        '["https://app.example.com/cb2"]' in planned
    )
    assert "    client_secret: (secret changed)" in planned
    assert "! kept connector google (not in the file; --prune deletes it)" in planned
    assert not any("webhook" in line for line in planned)
    assert await op.client_secret_works("web", "a-new-web-secret-" + "x" * 32)
    assert [k["id"] for k in op.export()["connectors"]] == ["google"]

    pruned = op.ok("apply", "-f", "realm.yaml", "--prune").splitlines()
    assert "- delete connector google" in pruned
    assert "Plan: 0 to create, 0 to update, 1 to delete, 5 unchanged." in pruned
    exported = op.export()
    assert exported["connectors"] == []
    assert len(exported["webhooks"]) == 1


async def test_an_unknown_key_is_refused_with_its_path(tmp_path: Path, database_url: str) -> None:
    op = Operator(tmp_path, database_url)
    realm = _realm()
    realm["clients"].append(
        {"client_id": "third", "name": "Third", "type": "public", "redirect_uri": ["https://x/"]}
    )
    op.write(realm)
    refused = op.run("apply", "-f", "realm.yaml")
    assert refused.returncode == 2
    one_line_error(refused, 'clients[2].redirect_uri: unknown key "redirect_uri"')
    assert "clients[2].redirect_uris" in refused.stderr
    assert op.export() == EMPTY


async def test_export_then_apply_changes_nothing(tmp_path: Path, database_url: str) -> None:
    op = Operator(tmp_path, database_url)
    op.ok("apply", "-f", op.write(_realm()))
    (tmp_path / "exported.yaml").write_text(op.ok("export"))
    events = await op.audit_count()
    again = op.ok("apply", "-f", "exported.yaml").splitlines()
    assert again[-1] == "No changes: the database matches the file."
    assert await op.audit_count() == events


async def test_a_failure_part_way_leaves_nothing_applied(tmp_path: Path, database_url: str) -> None:
    op = Operator(tmp_path, database_url)
    realm = _realm()
    # The admin comes last in the plan; the password policy refuses it after everything
    # else was written in the same transaction.
    (tmp_path / "secrets" / "ops-password").write_text("short\n")
    op.write(realm)
    failed = op.run("apply", "-f", "realm.yaml")
    assert failed.returncode == 1
    one_line_error(failed, "create admin ops@example.com", "nothing was applied")
    assert "+ create client web" in failed.stdout.splitlines()
    assert op.export() == EMPTY
    assert await op.audit_count() == 0


async def test_a_missing_secret_is_named_before_anything_is_written(
    tmp_path: Path, database_url: str
) -> None:
    op = Operator(tmp_path, database_url)
    del op.env["GOOGLE_CLIENT_SECRET"]
    op.write(_realm())
    failed = op.run("apply", "-f", "realm.yaml")
    assert failed.returncode == 2
    one_line_error(
        failed, "connectors[0].client_secret: environment variable GOOGLE_CLIENT_SECRET is not set"
    )
    assert op.export() == EMPTY
