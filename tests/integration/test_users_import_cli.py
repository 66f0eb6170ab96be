"""`auth-service users import FILE` as an operator runs it, on SQLite and PostgreSQL: argon2,
bcrypt, Django PBKDF2 and Firebase scrypt (with the project's parameters in a file) hashes
imported as they are and upgraded to argon2id at the first
sign-in; refused lines reported by number and reason (never their hash); a second run adds
nobody (idempotent by external id)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from pathlib import Path

import bcrypt
from argon2 import PasswordHasher as Argon2
from sqlalchemy import select

from auth_service.accounts.models import User
from tests.support.api import running_api
from tests.support.cli import cli_environment, json_output, run_cli
from tests.support.settings import TEST_MASTER_KEY, make_settings
from tests.unit.security.test_scrypt_hashes import FIREBASE_HASH, FIREBASE_PASSWORD, FIREBASE_SALT

HASH_PARAMETERS = {
    "base64_signer_key": (
        "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
    ),
    "base64_salt_separator": "Bw==",
    "rounds": 8,
    "mem_cost": 14,
}


def _django(password: str) -> str:
    salt = base64.b64encode(os.urandom(9)).decode()
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 100_000)
    return f"pbkdf2_sha256$100000${salt}${base64.b64encode(digest).decode()}"


ACCOUNTS = {
    "argon@example.com": ("argon pass phrase 1", Argon2(time_cost=1, memory_cost=8192).hash),
    "bcrypt@example.com": (
        "bcrypt pass phrase 2",
        lambda p: bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode(),
    ),
    "django@example.com": ("django pass phrase 3", _django),
}


def _file(path: Path) -> Path:
    lines: list[str] = []
    for number, (email, (password, hasher)) in enumerate(ACCOUNTS.items(), start=1):
        lines.append(
            json.dumps(
                {
                    "external_id": f"legacy-{number}",
                    "email": email,
                    "name": f"User {number}",
                    "password_hash": hasher(password),
                    "email_verified": True,
                }
            )
        )
    lines += [
        json.dumps({"external_id": "legacy-4", "email": "nopassword@example.com"}),  # 4
        "",  # 5: blank, ignored
        "{not json",  # 6
        json.dumps({"email": "noid@example.com"}),  # 7
        json.dumps({"external_id": "legacy-8", "email": "not an address"}),  # 8
        json.dumps(
            {"external_id": "legacy-9", "email": "md5@example.com", "password_hash": "md5$x$y"}
        ),
        json.dumps({"external_id": "legacy-1", "email": "again@example.com"}),  # 10
        json.dumps({"external_id": "legacy-11", "email": "ARGON@example.com"}),  # 11
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _import(tmp_path: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_environment(tmp_path / "data")
    env.update(AUTH_DATABASE__URL=database_url, AUTH_MASTER_KEY=TEST_MASTER_KEY)
    return run_cli(["users", "import", *args], env, tmp_path)


async def test_accounts_are_imported_once_and_their_hashes_upgraded_at_sign_in(
    tmp_path: Path, database_url: str
) -> None:
    source = _file(tmp_path / "users.ndjson")
    first = json_output(
        _import(tmp_path, database_url, str(source), "--batch-size", "3", "--format", "json")
    )
    assert first["imported"] == 4
    assert first["skipped"] == 1  # line 10: an external id seen before is the same account
    assert first["rejected"] == 5
    report = [json.loads(line) for line in Path(first["rejects"]).read_text().splitlines()]
    assert [(r["line"], r["external_id"]) for r in report] == [
        (6, None),
        (7, None),
        (8, "legacy-8"),
        (9, "legacy-9"),
        (11, "legacy-11"),
    ]
    reasons = {r["line"]: r["reason"] for r in report}
    assert reasons[6] == "not JSON"
    assert reasons[7] == "external_id must be a non-empty string"
    assert reasons[8].startswith("email: ")
    assert "not argon2, bcrypt, pbkdf2_sha256 or scrypt" in reasons[9]
    assert reasons[11] == "email already has an account"
    assert "md5$x$y" not in Path(first["rejects"]).read_text()

    # Again (an interrupted import resumed): nobody twice.
    second = json_output(_import(tmp_path, database_url, str(source), "--format", "json"))
    assert (second["imported"], second["skipped"]) == (0, 5)

    async with running_api(make_settings(tmp_path, database_url)) as api:
        for email, (password, _) in ACCOUNTS.items():
            r = await api.login(email, password)
            assert r.status_code == 200, (email, r.text)
        async with api.services.db.session() as s:
            rows = (await s.execute(select(User.email, User.password_hash))).all()
        hashes = {row.email: row.password_hash for row in rows}
    for email in ACCOUNTS:
        assert (hashes[email] or "").startswith("$argon2id$v=19$m=1024,t=1"), (email, hashes[email])
    assert hashes["nopassword@example.com"] is None


async def test_progress_summary_and_a_missing_file(tmp_path: Path, database_url: str) -> None:
    source = _file(tmp_path / "users.ndjson")
    result = _import(tmp_path, database_url, str(source))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported 4, already there 1, refused 5"
    assert "users.ndjson.rejected.ndjson" in result.stderr
    missing = _import(tmp_path, database_url, str(tmp_path / "nope.ndjson"))
    assert missing.returncode == 1
    assert "is not a file" in missing.stderr


async def test_a_firebase_export_with_its_hash_parameters(
    tmp_path: Path, database_url: str
) -> None:
    parameters = tmp_path / "firebase-hash.json"
    parameters.write_text(json.dumps(HASH_PARAMETERS))
    source = tmp_path / "firebase.ndjson"
    source.write_text(
        json.dumps(
            {
                "external_id": "firebase-uid-1",
                "email": "firebase@example.com",
                "password_hash": FIREBASE_HASH,
                "password_salt": FIREBASE_SALT,
            }
        )
        + "\n"
        + json.dumps({"external_id": "long", "email": "l@example.com", "name": "n" * 70_000})
        + "\n"
    )
    result = json_output(
        _import(
            tmp_path,
            database_url,
            str(source),
            "--hash-parameters",
            str(parameters),
            "--format",
            "json",
        )
    )
    assert (result["imported"], result["rejected"]) == (1, 1)
    rejected = json.loads(Path(result["rejects"]).read_text())
    assert rejected == {"line": 2, "external_id": None, "reason": "longer than 16384 bytes"}
    async with running_api(make_settings(tmp_path, database_url)) as api:
        assert (await api.login("firebase@example.com", FIREBASE_PASSWORD)).status_code == 200

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**HASH_PARAMETERS, "mem_cost": 40}))
    refused = _import(tmp_path, database_url, str(source), "--hash-parameters", str(broken))
    assert refused.returncode == 1
    assert "mem_cost" in refused.stderr
    assert HASH_PARAMETERS["base64_signer_key"] not in refused.stderr
