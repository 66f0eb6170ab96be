"""The commands of docs/operations/users-import.md, read from the page and run as written:
a Firebase export converted with jq, imported with the project's hash parameters (one
account first, then all), and a file sent to `POST /v1/admin/users:import` with curl against
a running `auth-service serve`. The Firebase account is the published example of Firebase's
own scrypt tool, so its password signs in only if the modified scrypt is right."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import httpx

from tests.support.server import CLI, Server, base_env, migrate
from tests.unit.security.test_scrypt_hashes import FIREBASE_HASH, FIREBASE_PASSWORD, FIREBASE_SALT

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "operations" / "users-import.md"
ADMIN_PASSWORD = "runbook admin pass 1"


def _command(starts: str) -> str:
    """The command cell of the runbook's table row whose command starts with ``starts``."""
    for line in RUNBOOK.read_text().splitlines():
        for cell in re.findall(r"`([^`]+)`", line.replace("\\|", "\x00")):
            if cell.startswith(starts):
                return cell.replace("\x00", "|")
    raise AssertionError(f"no command starting with {starts!r} in {RUNBOOK}")


def _sh(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (command, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def test_the_runbook_commands(tmp_path: Path) -> None:
    env = base_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}")
    env["PATH"] = f"{Path(CLI).parent}{os.pathsep}{env['PATH']}"
    migrate(tmp_path, env)

    # Firebase: an export as `firebase auth:export --format=json` writes it, and the console's
    # password hash parameters (the published example's).
    export = {
        "users": [
            {
                "localId": "fb-uid-1",
                "email": "firebase@example.com",
                "emailVerified": True,
                "passwordHash": FIREBASE_HASH,
                "salt": FIREBASE_SALT,
                "displayName": "Fire Base",
                "createdAt": "1700000000000",
            },
            {"localId": "fb-uid-2", "email": "google-only@example.com", "providerUserInfo": []},
        ]
    }
    (tmp_path / "users.json").write_text(json.dumps(export))
    (tmp_path / "firebase-hash.json").write_text(
        json.dumps(
            {
                "base64_signer_key": "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZ"
                "JzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==",
                "base64_salt_separator": "Bw==",
                "rounds": 8,
                "mem_cost": 14,
            }
        )
    )
    _sh(_command("jq -c"), tmp_path, env)
    lines = [json.loads(x) for x in (tmp_path / "users.ndjson").read_text().splitlines()]
    assert lines[0]["password_salt"] == FIREBASE_SALT
    assert lines[1]["email_verified"] is False
    first = _sh(_command("head -n 1 users.ndjson"), tmp_path, env)
    assert first.stdout.strip() == "imported 1, already there 0, refused 0"
    everything = _sh(
        _command("auth-service users import users.ndjson --hash-parameters"), tmp_path, env
    )
    assert everything.stdout.strip() == "imported 1, already there 1, refused 0"

    # Over the API, with curl, as an administrator.
    email = f"admin-{uuid.uuid4().hex[:6]}@example.com"
    created = subprocess.run(
        [CLI, "users", "create", "--email", email, "--admin", "--password-stdin"],
        input=ADMIN_PASSWORD,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    api_dir = tmp_path / "api"
    api_dir.mkdir()
    (api_dir / "users.ndjson").write_text(
        json.dumps({"external_id": "api-1", "email": "api@example.com"}) + "\n\n{not json\n"
    )
    with Server(tmp_path, env) as server:
        token = httpx.post(
            f"{server.url}/v1/auth/login", json={"email": email, "password": ADMIN_PASSWORD}
        ).json()["access_token"]
        answer = _sh(
            _command("curl -sS -X POST -T users.ndjson"),
            api_dir,
            {**env, "TOKEN": token, "AUTH_URL": server.url},
        )
        documented = json.loads(_command('{"imported": 1, "skipped": 0, "rejected": 1'))
        assert json.loads(answer.stdout) == documented
        signed_in = httpx.post(
            f"{server.url}/v1/auth/login",
            json={"email": "firebase@example.com", "password": FIREBASE_PASSWORD},
        )
        assert signed_in.status_code == 200, signed_in.text
