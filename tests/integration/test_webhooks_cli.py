"""`auth-service webhooks ...` as an operator runs it (docs/operations/webhooks.md), on SQLite
and PostgreSQL: create a subscription, see it listed (table and JSON), let a separate
`jobs work` deliver an event to a real receiver that verifies the signature, read the
delivery log, rotate the secret, delete (dry run first); one-line errors for the refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.services import build_services
from tests.support.cli import cli_environment, json_output, one_line_error, run_cli
from tests.support.settings import TEST_MASTER_KEY, make_settings, write_config
from tests.support.webhook_receiver import WebhookReceiver

# The runbook's development settings: a receiver on loopback over http.
CONFIG = {
    "webhooks": {"allow_http": True, "allowed_networks": ["127.0.0.1/32"]},
    "jobs": {"backoff_base_seconds": 0.05, "poll_interval_seconds": 0.05},
}


def _cli(tmp_path: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_environment(tmp_path / "data")
    env.update(AUTH_DATABASE__URL=database_url, AUTH_MASTER_KEY=TEST_MASTER_KEY)
    config = write_config(tmp_path / "webhooks.yaml", CONFIG)
    return run_cli(["--config", str(config), *args], env, tmp_path)


async def _user_registered(tmp_path: Path, database_url: str) -> None:
    """An audit event of the subscribed type, recorded as the server records it."""
    services = build_services(make_settings(tmp_path, database_url, **CONFIG))
    try:
        await services.audit.record(events.USER_REGISTERED, RequestContext(request_id="cli-test"))
    finally:
        await services.close()


async def test_a_webhook_is_created_delivered_rotated_and_deleted(
    tmp_path: Path, database_url: str
) -> None:
    receiver = WebhookReceiver().up()
    try:
        created = json_output(
            _cli(
                tmp_path,
                database_url,
                *("webhooks", "create", "--url", receiver.url, "--event", "user.registered"),
                *("--description", "crm", "--format", "json"),
            )
        )
        hook = created["id"]
        assert created["secret"].startswith("whsec_")
        receiver.secrets = [created["secret"]]

        listed = json_output(_cli(tmp_path, database_url, "webhooks", "list", "--format", "json"))
        assert [(w["id"], w["event_types"]) for w in listed] == [(hook, ["user.registered"])]
        assert "secret" not in listed[0]
        table = _cli(tmp_path, database_url, "webhooks", "list")
        assert table.stdout.splitlines()[0].split("\t") == [
            "id",
            "url",
            "event_types",
            "enabled",
            "description",
        ]
        assert hook in table.stdout

        await _user_registered(tmp_path, database_url)
        worked = _cli(tmp_path, database_url, "jobs", "work", "--until-idle")
        assert worked.returncode == 0, worked.stderr
        assert receiver.rejected == []
        assert [m.json()["type"] for m in receiver.processed] == ["user.registered"]
        log = json_output(
            _cli(tmp_path, database_url, "webhooks", "deliveries", hook, "--format", "json")
        )
        assert [(d["status"], d["attempts"], d["response_code"]) for d in log] == [
            ("delivered", 1, 200)
        ]

        rotated = json_output(
            _cli(tmp_path, database_url, "webhooks", "rotate-secret", hook, "--format", "json")
        )
        assert rotated["secret"] != created["secret"]
        assert rotated["previous_secret_expires_at"] is not None
        shown = _cli(tmp_path, database_url, "webhooks", "show", hook)
        assert shown.returncode == 0, shown.stderr
        assert "whsec_" not in shown.stdout
        assert receiver.url in shown.stdout

        dry = _cli(tmp_path, database_url, "webhooks", "delete", hook)
        assert dry.returncode == 0, dry.stderr
        assert "would delete" in dry.stdout
        assert "dry run" in dry.stderr
        assert len(
            json_output(_cli(tmp_path, database_url, "webhooks", "list", "--format", "json"))
        )
        gone = _cli(tmp_path, database_url, "webhooks", "delete", hook, "--confirm")
        assert gone.returncode == 0, gone.stderr
        assert (
            json_output(_cli(tmp_path, database_url, "webhooks", "list", "--format", "json")) == []
        )
    finally:
        receiver.down()


async def test_refusals_are_one_line_errors(tmp_path: Path, database_url: str) -> None:
    private = _cli(
        tmp_path,
        database_url,
        *("webhooks", "create", "--url", "https://10.0.0.7/hook", "--event", "user.registered"),
    )
    assert private.returncode == 1
    one_line_error(private, "not a public address")
    unknown = _cli(
        tmp_path,
        database_url,
        *("webhooks", "create", "--url", "https://127.0.0.1/x", "--event", "user.invented"),
    )
    one_line_error(unknown, "not in the audit catalogue: user.invented")
    missing = _cli(
        tmp_path, database_url, "webhooks", "show", "00000000-0000-4000-8000-00000000abcd"
    )
    one_line_error(missing, "no webhook with that id")
