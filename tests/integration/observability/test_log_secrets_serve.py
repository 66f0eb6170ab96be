"""A real `auth-service serve` at DEBUG, driven through every credential flow: its stdout
holds none of the passwords, tokens, keys or Authorization headers it handled, and every
request left exactly one well-formed access line.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from pathlib import Path

import httpx

from tests.support.mail import mail_token
from tests.support.server import Server, base_env, migrate
from tests.support.settings import TEST_MASTER_KEY

ACCESS_FIELDS = {"request_id", "tenant", "route", "status", "duration_ms", "method", "timestamp"}


def _outbox(tmp: Path) -> list[str]:
    return [p.read_text() for p in sorted((tmp / "data" / "outbox").glob("*.eml"))]


def test_served_traffic_logs_no_secret(tmp_path: Path, redis_url: str) -> None:
    password = "Corr3ct-" + secrets.token_urlsafe(12)
    wrong = "Wr0ng-" + secrets.token_urlsafe(12)
    new_password = "N3w-" + secrets.token_urlsafe(12)
    changed_password = "Ch4nged-" + secrets.token_urlsafe(12)
    forged_bearer = secrets.token_urlsafe(48)
    forged_jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0." + secrets.token_urlsafe(20)
    basic = base64.b64encode(f"admin:{secrets.token_urlsafe(10)}".encode()).decode()
    query_secret = secrets.token_urlsafe(24)
    used: set[str] = {
        password,
        wrong,
        new_password,
        changed_password,
        forged_bearer,
        forged_jwt,
        basic,
        query_secret,
        TEST_MASTER_KEY,
    }

    env = base_env(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}", AUTH_REDIS__URL=redis_url
    )
    migrate(tmp_path, env)
    requests = 0
    with Server(tmp_path, env) as server, httpx.Client(base_url=server.url, timeout=30) as c:

        def call(method: str, path: str, **kw: object) -> httpx.Response:
            nonlocal requests
            requests += 1
            response = c.request(method, path, **kw)  # type: ignore[arg-type]
            for key in ("access_token", "refresh_token"):
                if response.headers.get("content-type", "").startswith("application/json"):
                    value = response.json().get(key) if isinstance(response.json(), dict) else None
                    if value:
                        used.add(value)
            return response

        email = f"ls-{uuid.uuid4().hex[:8]}@example.com"
        assert (
            call(
                "POST", "/v1/auth/register", json={"email": email, "password": password}
            ).status_code
            == 202
        )
        assert (
            call(
                "POST", "/v1/auth/register", json={"email": "x@example.com", "password": "short"}
            ).status_code
            == 422
        )
        assert (
            call("POST", "/v1/auth/login", json={"email": email, "password": wrong}).status_code
            == 401
        )
        login = call("POST", "/v1/auth/login", json={"email": email, "password": password}).json()
        first_refresh = login["refresh_token"]
        refreshed = call("POST", "/v1/auth/refresh", json={"refresh_token": first_refresh}).json()
        # Reuse of the spent token: the session is revoked and the event logged.
        assert (
            call("POST", "/v1/auth/refresh", json={"refresh_token": first_refresh}).status_code
            == 401
        )
        assert (
            call("POST", "/v1/auth/refresh", json={"refresh_token": forged_bearer}).status_code
            == 401
        )

        login = call("POST", "/v1/auth/login", json={"email": email, "password": password}).json()
        bearer = {"Authorization": f"Bearer {login['access_token']}"}
        assert call("GET", "/v1/users/me", headers=bearer).status_code == 200
        for header in (
            f"Bearer {forged_bearer}",
            f"Bearer {forged_jwt}",
            f"Basic {basic}",
            forged_bearer,
        ):
            assert call("GET", "/v1/users/me", headers={"Authorization": header}).status_code == 401
        r = call(
            "POST",
            "/v1/auth/password/change",
            json={"current_password": password, "new_password": changed_password},
            headers=bearer,
        )
        assert r.status_code in (200, 204), r.text
        call("GET", f"/v1/auth/email/verify?token={query_secret}")
        call("POST", "/v1/auth/password/forgot", json={"email": email})
        call("POST", "/v1/auth/logout", json={"refresh_token": refreshed["refresh_token"]})

        # Mail goes out in the background: wait for the reset link.
        import time

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
            "reset-password" in m for m in _outbox(tmp_path)
        ):
            time.sleep(0.1)
        reset_token = mail_token(_outbox(tmp_path), "/reset-password")
        verify_token = mail_token(_outbox(tmp_path), "/verify-email")
        used.update({reset_token, verify_token})
        r = call(
            "POST",
            "/v1/auth/password/reset",
            json={"token": reset_token, "new_password": new_password},
        )
        assert r.status_code in (200, 204), r.text
        assert (
            call(
                "POST",
                "/v1/auth/password/reset",
                json={"token": reset_token, "new_password": new_password},
            ).status_code
            == 400
        )
        assert call("POST", "/v1/auth/email/verify", json={"token": verify_token}).status_code in (
            200,
            204,
        )
        assert (
            call(
                "POST", "/v1/auth/login", json={"email": email, "password": new_password}
            ).status_code
            == 200
        )
        server.stop()
        logs = server.logs()

    used = {s for s in used if len(s) >= 8}
    leaked = sorted(s for s in used if s in logs)
    assert not leaked, f"{len(leaked)} secret(s) in the server output, e.g. {leaked[0][:6]}..."

    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("log_type") == "access"]
    assert len(access) == requests, "exactly one access line per request"
    for line in access:
        assert line.keys() >= ACCESS_FIELDS, line
    assert {line["route"] for line in access} >= {
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/users/me",
    }
    audit = {line["event"] for line in lines if line.get("log_type") == "audit"}
    assert len(audit) >= 5, audit
    # Lines emitted inside a request carry its id and route, not only the access line.
    inner = [line for line in lines if line.get("log_type") == "audit" and "request_id" in line]
    assert inner
    assert all("route" in line for line in inner)
