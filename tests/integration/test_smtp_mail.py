"""Mail over real SMTP: an aiosmtpd server on loopback receives the verification mail."""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.support.api import SQLITE_ONLY, Api, running_api
from tests.support.settings import PASSWORD, make_settings
from tests.support.smtp import Inbox, smtp_server
from tests.support.tls import self_signed_certificate


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    if hasattr(request, "param"):
        return dict(request.param)
    smtp: tuple[Inbox, int] = request.getfixturevalue("smtp")
    return {
        "mail": {
            "backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp[1],
            "smtp_starttls": False,
            "from_address": "Auth <auth@example.com>",
        }
    }


async def test_verification_mail_arrives_over_smtp_and_its_link_verifies(
    api: Api, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    r = await api.register("smtp-user@example.com", "Tr0ub4dor&3-horse")
    assert r.status_code == 202
    await api.services.mail.join()
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == "smtp-user@example.com"
    assert message["From"] == "Auth <auth@example.com>"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    link = re.search(r"(https?://\S+/verify-email\?token=([A-Za-z0-9_-]+))", body.get_content())
    assert link, body.get_content()
    r = await api.client.post("/v1/auth/email/verify", json={"token": link.group(2)})
    assert r.status_code == 204
    login = (await api.login("smtp-user@example.com", "Tr0ub4dor&3-horse")).json()
    me = await api.client.get("/v1/users/me", headers=api.bearer(login["access_token"]))
    assert me.json()["email_verified"] is True


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "mail": {
                "backend": "smtp",
                "smtp_host": "127.0.0.1",
                "smtp_port": 1,
                "smtp_starttls": False,
                "max_attempts": 2,
                "retry_base_seconds": 0.05,
                "smtp_timeout_seconds": 1,
            }
        }
    ],
    indirect=True,
)
async def test_smtp_outage_never_blocks_the_request_and_is_counted(api: Api) -> None:
    start = time.perf_counter()
    r = await api.register("lost-mail@example.com", "Tr0ub4dor&3-horse")
    elapsed = time.perf_counter() - start
    assert r.status_code == 202
    await asyncio.wait_for(api.services.mail.join(), timeout=10)
    assert elapsed < 5  # the request did not wait for the mail retries
    metrics = (await api.management.get("/metrics")).text
    failed = re.search(r"^auth_mail_failed_total (\S+)$", metrics, re.M)
    assert failed
    assert float(failed.group(1)) >= 1


# ---- STARTTLS ---------------------------------------------------------------------------------


@pytest.fixture
def tls_smtp(tmp_path: Path) -> Iterator[tuple[Inbox, int, Path]]:
    """An SMTP server that refuses mail until the client switches to TLS (STARTTLS), with a
    certificate of its own for localhost; the inbox, the port and the certificate."""
    cert, key = self_signed_certificate(tmp_path, 30, "localhost", ips=("127.0.0.1",))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with smtp_server(tls_context=context, require_starttls=True) as (inbox, port):
        yield inbox, port, cert


def _starttls(port: int, **mail: Any) -> dict[str, Any]:
    return {
        "mail": {
            "backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": True,
            "smtp_timeout_seconds": 5,
            **mail,
        }
    }


def _mail_failed() -> float:
    return REGISTRY.get_sample_value("auth_mail_failed_total") or 0.0


@SQLITE_ONLY
@pytest.mark.parametrize(
    "trust", ["certificate checks off", "the server's certificate trusted"], ids=["off", "ca"]
)
async def test_mail_goes_over_starttls(
    tmp_path: Path,
    database_url: str,
    tls_smtp: tuple[Inbox, int, Path],
    monkeypatch: pytest.MonkeyPatch,
    trust: str,
) -> None:
    inbox, port, cert = tls_smtp
    if trust == "certificate checks off":
        overrides = _starttls(port, smtp_validate_certs=False)
    else:
        # The service verifies against the system's trust store, which SSL_CERT_FILE names.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        overrides = _starttls(port, smtp_validate_certs=True)
    async with running_api(make_settings(tmp_path, database_url, **overrides)) as api:
        assert (await api.register("tls-user@example.com", PASSWORD)).status_code == 202
        await api.services.mail.join()
    assert [m["To"] for m in inbox.messages] == ["tls-user@example.com"]
    assert inbox.tls == [True]


@SQLITE_ONLY
@pytest.mark.parametrize(
    "mail",
    [
        # The server's certificate is not trusted: no mail rather than mail to an impostor.
        {"smtp_validate_certs": True},
        # Without STARTTLS this server takes nothing: the tests above really went over TLS.
        {"smtp_starttls": False},
    ],
    ids=["untrusted certificate", "plain text"],
)
async def test_no_mail_without_a_trusted_tls_session(
    tmp_path: Path, database_url: str, tls_smtp: tuple[Inbox, int, Path], mail: dict[str, Any]
) -> None:
    inbox, port, _ = tls_smtp
    before = _mail_failed()
    async with running_api(make_settings(tmp_path, database_url, **_starttls(port, **mail))) as api:
        assert (await api.register("tls-user@example.com", PASSWORD)).status_code == 202
        await api.services.mail.join()
    assert inbox.messages == []
    assert _mail_failed() == before + 1
