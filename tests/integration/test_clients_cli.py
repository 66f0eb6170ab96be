"""`auth-service clients create|update` with the back-channel logout and token exchange
metadata, as an operator sets them (SQLite: the CLI's path to the service is the same on
both databases, which the API tests cover)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import cli_environment, run_cli

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def test_back_channel_logout_and_token_exchange_options(tmp_path: Path) -> None:
    env = cli_environment(tmp_path / "data")
    assert run_cli(["migrate"], env, tmp_path).returncode == 0
    created = run_cli(
        [
            "clients", "create", "--name", "Reports", "--type", "confidential",
            "--redirect-uri", "https://rp.example/cb",
            "--grant-type", "authorization_code", "--grant-type", EXCHANGE,
            "--backchannel-logout-uri", "https://rp.example/backchannel",
            "--backchannel-logout-session-required",
            "--token-exchange-audience", "https://api.example",
            "--format", "json",
        ],
        env,
        tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    client = json.loads(created.stdout)
    assert client["backchannel_logout_uri"] == "https://rp.example/backchannel"
    assert client["backchannel_logout_session_required"] is True
    assert client["token_exchange_audiences"] == ["https://api.example"]
    assert EXCHANGE in client["grant_types"]

    updated = run_cli(
        [
            "clients", "update", client["client_id"],
            "--backchannel-logout-uri", "",
            "--token-exchange-audience", "reports-api",
            "--format", "json",
        ],
        env,
        tmp_path,
    )  # fmt: skip
    assert updated.returncode == 0, updated.stderr
    after = json.loads(updated.stdout)
    assert after["backchannel_logout_uri"] is None
    assert after["backchannel_logout_session_required"] is False
    assert after["token_exchange_audiences"] == ["reports-api"]
