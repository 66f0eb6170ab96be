"""`POST /v1/admin/users:import` on SQLite and PostgreSQL: thousands of accounts streamed as
NDJSON in chunks (the same code as `auth-service users import`), malformed and oversized
lines reported by number and reason without their hash, idempotent by external id, scrypt
and Firebase scrypt hashes verified at sign-in and upgraded to argon2id; refused for a body
that is not NDJSON, over the import limit, or from someone who is not an administrator;
audited."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from auth_service.accounts.models import User
from tests.support.admin import signed_in_admin
from tests.support.api import Api
from tests.support.problems import assert_problem
from tests.unit.security.test_scrypt_hashes import (
    FIREBASE_HASH,
    FIREBASE_PASSWORD,
    FIREBASE_SALT,
    passlib_scrypt,
    werkzeug_scrypt,
)

PATH = "/v1/admin/users:import"
NDJSON = {"content-type": "application/x-ndjson"}
GOOD = 3000
SCRYPT_PASSWORD = "scrypt pass phrase 7"
HASH_PARAMETERS = {
    "algorithm": "SCRYPT",
    "base64_signer_key": (
        "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
    ),
    "base64_salt_separator": "Bw==",
    "rounds": 8,
    "mem_cost": 14,
}


@pytest.fixture
async def admin(api: Api) -> dict[str, Any]:
    return await signed_in_admin(api)


def _lines() -> list[bytes]:
    """Line 1: Firebase's parameters; then GOOD accounts with refused lines among them."""
    lines = [json.dumps({"hash_parameters": HASH_PARAMETERS})]
    for i in range(GOOD):
        lines.append(json.dumps({"external_id": f"old-{i}", "email": f"user{i}@example.com"}))
    lines += [
        json.dumps(
            {
                "external_id": "fb-1",
                "email": "firebase@example.com",
                "password_hash": FIREBASE_HASH,
                "password_salt": FIREBASE_SALT,
            }
        ),
        json.dumps(
            {
                "external_id": "sc-1",
                "email": "passlib@example.com",
                "password_hash": passlib_scrypt(SCRYPT_PASSWORD),
            }
        ),
        json.dumps(
            {
                "external_id": "sc-2",
                "email": "werkzeug@example.com",
                "password_hash": werkzeug_scrypt(SCRYPT_PASSWORD),
            }
        ),
        "{not json",
        json.dumps({"external_id": "big", "email": "big@example.com", "name": "x" * 20_000}),
        json.dumps({"external_id": "md5", "email": "md5@example.com", "password_hash": "md5$a$b"}),
        json.dumps({"external_id": "old-1", "email": "other@example.com"}),  # seen: skipped
        json.dumps({"external_id": "dup", "email": "USER2@example.com"}),  # address taken
        json.dumps(
            {
                "external_id": "fb-2",
                "email": "fb2@example.com",
                "password_hash": "QUJD",
                "password_salt": FIREBASE_SALT,
            }
        ),  # not as long as the signer key
    ]
    return [line.encode() + b"\n" for line in lines]


async def _chunks(data: bytes, size: int = 7000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _post(api: Api, headers: dict[str, str], body: bytes, **params: Any) -> httpx.Response:
    # An async iterator is sent chunked (no Content-Length): the route reads it as it comes.
    return await api.client.post(
        PATH, content=_chunks(body), headers={**headers, **NDJSON}, params=params
    )


async def _hash(api: Api, email: str) -> str | None:
    async with api.services.db.sessionmaker() as s:
        value: str | None = await s.scalar(select(User.password_hash).where(User.email == email))
    return value


async def test_thousands_imported_once_with_refusals_reported(
    api: Api, admin: dict[str, Any]
) -> None:
    body = b"".join(_lines())
    r = await _post(api, admin["headers"], body, batch_size=250)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["imported"], report["skipped"], report["rejected"]) == (GOOD + 3, 1, 5)
    assert report["rejected_lines_truncated"] is False
    reasons = {x["line"]: x["reason"] for x in report["rejected_lines"]}
    first_bad = GOOD + 5  # header line 1, accounts 2..GOOD+1, three hashed accounts
    assert reasons == {
        first_bad: "not JSON",
        first_bad + 1: "longer than 16384 bytes",
        first_bad + 2: reasons[first_bad + 2],
        first_bad + 4: "email already has an account",
        first_bad + 5: "password_hash is not as long as the Firebase signer key",
    }
    assert "not argon2, bcrypt, pbkdf2_sha256 or scrypt" in reasons[first_bad + 2]
    assert [x["line"] for x in report["rejected_lines"]] == sorted(reasons)
    assert "md5$a$b" not in r.text
    assert HASH_PARAMETERS["base64_signer_key"] not in r.text

    # Sent again (a retry after a dropped connection): nobody twice.
    again = (await _post(api, admin["headers"], body)).json()
    assert (again["imported"], again["skipped"]) == (0, GOOD + 4)

    # Firebase and scrypt hashes sign in and are upgraded to argon2id.
    stored = await _hash(api, "firebase@example.com")
    assert stored is not None
    assert stored.startswith("$firebase-scrypt$m=14,r=8$")
    for email, password in [
        ("firebase@example.com", FIREBASE_PASSWORD),
        ("passlib@example.com", SCRYPT_PASSWORD),
        ("werkzeug@example.com", SCRYPT_PASSWORD),
    ]:
        assert (await api.login(email, password + "x")).status_code == 401
        assert (await api.login(email, password)).status_code == 200, email
        assert (await _hash(api, email) or "").startswith("$argon2id$"), email
        assert (await api.login(email, password)).status_code == 200

    events = await api.client.get(
        "/v1/admin/audit-events",
        params={"type": "admin.users_imported"},
        headers=admin["headers"],
    )
    details = [e["details"] for e in events.json()["items"]]
    assert {"source": "api", "imported": GOOD + 3, "skipped": 1, "rejected": 5} in details


async def test_the_report_lists_the_first_thousand_refusals(
    api: Api, admin: dict[str, Any]
) -> None:
    body = b"[]\n" * 1500 + b'{"external_id": "x", "email": "x@example.com"}\n'
    report = (await _post(api, admin["headers"], body)).json()
    assert (report["imported"], report["rejected"]) == (1, 1500)
    assert len(report["rejected_lines"]) == 1000
    assert report["rejected_lines_truncated"] is True
    assert report["rejected_lines"][0] == {
        "line": 1,
        "external_id": None,
        "reason": "not a JSON object",
    }


async def test_a_bad_header_line_refuses_the_firebase_lines_only(
    api: Api, admin: dict[str, Any]
) -> None:
    body = (
        json.dumps({"hash_parameters": {**HASH_PARAMETERS, "rounds": "8"}})
        + "\n"
        + json.dumps(
            {
                "external_id": "fb",
                "email": "fb@example.com",
                "password_hash": FIREBASE_HASH,
                "password_salt": FIREBASE_SALT,
            }
        )
        + "\n"
        + json.dumps({"external_id": "plain", "email": "plain@example.com"})
    ).encode()
    report = (await _post(api, admin["headers"], body)).json()
    assert (report["imported"], report["rejected"]) == (1, 2)
    assert [x["reason"] for x in report["rejected_lines"]] == [
        "hash_parameters: rounds and mem_cost must be integers",
        "password_salt (Firebase scrypt) needs the project's hash_parameters",
    ]


async def test_refused_content_types_and_callers(api: Api, admin: dict[str, Any]) -> None:
    line = b'{"external_id": "a", "email": "a@example.com"}\n'
    for media in ("application/json", "text/plain", None):
        headers = {**admin["headers"], **({"content-type": media} if media else {})}
        r = await api.client.post(PATH, content=line, headers=headers)
        assert_problem(r, 415, "unsupported-media-type")
    user = await api.user()
    r = await api.client.post(
        PATH, content=line, headers={**api.bearer(user["access_token"]), **NDJSON}
    )
    assert r.status_code == 403, r.text
    r = await api.client.post(PATH, content=line, headers=NDJSON)
    assert r.status_code == 401, r.text
    # Another method is not allowed, whatever its body (not a 415 for the JSON API's rule).
    for media in ("application/x-ndjson", "application/json"):
        r = await api.client.put(
            PATH, content=line, headers={**admin["headers"], "content-type": media}
        )
        assert r.status_code == 405, r.text
    assert await _hash(api, "a@example.com") is None
    async with api.services.db.sessionmaker() as s:
        assert await s.scalar(select(User.id).where(User.email == "a@example.com")) is None


@pytest.mark.parametrize(
    "settings_overrides", [{"server": {"max_import_bytes": 4096}}], indirect=True
)
async def test_a_body_over_the_import_limit(api: Api, admin: dict[str, Any]) -> None:
    lines = b"".join(
        json.dumps({"external_id": f"e{i}", "email": f"e{i}@example.com"}).encode() + b"\n"
        for i in range(200)
    )
    # Declared too long: refused before anything is read.
    r = await api.client.post(PATH, content=lines, headers={**admin["headers"], **NDJSON})
    assert_problem(r, 413, "payload-too-large")
    # Streamed past the limit: refused there; the batches stored before it stay (a retry
    # is idempotent).
    r = await _post(api, admin["headers"], lines, batch_size=10)
    assert_problem(r, 413, "payload-too-large")
    # The other JSON routes keep their own limit and media type.
    r = await api.client.post(
        "/v1/admin/users", content=b"x" * 5000, headers={**admin["headers"], **NDJSON}
    )
    assert r.status_code == 415, r.text
