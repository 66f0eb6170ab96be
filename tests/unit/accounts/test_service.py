"""The accounts service called directly (no HTTP) on a real SQLite database: registration,
credential checks, the lockout path and the one-time tokens of verification and reset."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import update

from auth_service.accounts.errors import (
    AccountLocked,
    InvalidCredentials,
    InvalidEmail,
    InvalidOneTimeToken,
    WeakPassword,
)
from auth_service.accounts.identity import Identity
from auth_service.accounts.models import OneTimeToken
from auth_service.audit.context import RequestContext
from auth_service.db.base import utcnow
from auth_service.jobs.worker import JobWorker
from auth_service.services import Services, build_services
from tests.support.mail import decode_mail, mail_token, tokens_in_mail
from tests.support.secrets import remember
from tests.support.settings import PASSWORD, make_settings

CTX = RequestContext(ip="198.51.100.20", request_id="unit")
NEW_PASSWORD = "an0ther-Horse-battery"


@pytest.fixture
async def services(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Services]:
    database = tmp_path / "auth.db"
    shutil.copy(sqlite_template, database)
    settings = make_settings(
        tmp_path,
        f"sqlite+aiosqlite:///{database}",
        lockout={"threshold": 2, "base_seconds": 60},
    )
    built = build_services(settings)
    await built.start()
    # The mail these use cases send is a job: a worker delivers it to the outbox.
    worker = JobWorker(built.jobs, built.job_upkeep, concurrency=1)
    worker.start()
    try:
        yield built
    finally:
        await worker.stop(drain_seconds=5)
        await built.close()


async def _mails(services: Services) -> list[str]:
    await services.mail.join()
    outbox = services.settings.outbox_dir
    mails = [decode_mail(p.read_bytes()) for p in sorted(outbox.glob("*.eml"))]
    for mail in mails:
        remember(*tokens_in_mail(mail))  # the session checks that none was logged
    return mails


async def _register(services: Services, email: str = "ada@example.com") -> Identity:
    """Register ``email``; the account, read back (registration answers nothing: ADR 0011)."""
    await services.accounts.registration.register(email, PASSWORD, "Ada", CTX)
    identity = await services.accounts.identities.by_email(
        services.accounts.tenant_id, email.strip().lower()
    )
    assert identity is not None
    return identity


# ---- registration ------------------------------------------------------------------------------


async def test_register_creates_an_unverified_account_and_mails_a_link(
    services: Services,
) -> None:
    await services.accounts.registration.register(" Ada@Example.COM ", PASSWORD, "Ada", CTX)
    identity = await services.accounts.identities.by_email(
        services.accounts.tenant_id, "ada@example.com"
    )
    assert identity is not None
    assert identity.email == "ada@example.com"
    assert identity.name == "Ada"
    assert identity.status == "active"
    assert identity.email_verified_at is None
    assert identity.roles == ()
    assert await services.accounts.users.get(identity.id) == identity
    (mail,) = await _mails(services)
    assert "To: ada@example.com" in mail
    assert mail_token([mail], "/verify-email")


async def test_register_refuses_invalid_and_weak_and_ignores_taken(services: Services) -> None:
    await _register(services)
    # A taken address: no error and no second account; its owner is mailed (ADR 0011).
    await services.accounts.registration.register(
        "ADA@example.com", "another pass phrase", None, CTX
    )
    with pytest.raises(InvalidEmail):
        await services.accounts.registration.register("not-an-email", PASSWORD, None, CTX)
    with pytest.raises(WeakPassword) as weak:
        await services.accounts.registration.register("bob@example.com", "short", None, CTX)
    assert weak.value.reasons
    assert await services.accounts.identities.count() == 1
    mails = await _mails(services)
    assert "Someone tried to create an account with your address" in mails[-1]


# ---- credentials and lockout ------------------------------------------------------------------


async def test_authenticate_checks_the_password_and_records_the_login(
    services: Services,
) -> None:
    registered = await _register(services)
    identity = await services.accounts.credentials.authenticate("ADA@example.com", PASSWORD, CTX)
    assert identity.id == registered.id
    assert (await services.accounts.users.get(registered.id)).last_login_at is not None
    with pytest.raises(InvalidCredentials):
        await services.accounts.credentials.authenticate("ada@example.com", "not-the-password", CTX)
    with pytest.raises(InvalidCredentials):
        await services.accounts.credentials.authenticate("nobody@example.com", PASSWORD, CTX)


@pytest.mark.parametrize("email", ["ada@example.com", "nobody@example.com"])
async def test_failures_lock_known_and_unknown_emails_alike(services: Services, email: str) -> None:
    await _register(services)
    for _ in range(2):  # the threshold
        with pytest.raises(InvalidCredentials):
            await services.accounts.credentials.verify_login(email, "not-the-password", CTX)
    # Locked: even the right password is refused, before it is checked.
    with pytest.raises(AccountLocked) as locked:
        await services.accounts.credentials.verify_login(email, PASSWORD, CTX)
    assert 0 < locked.value.retry_after_seconds <= 60


async def test_a_password_reset_lifts_the_lock(services: Services) -> None:
    await _register(services)
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            await services.accounts.credentials.verify_login(
                "ada@example.com", "not-the-password", CTX
            )
    await services.accounts.recovery.forgot_password("ada@example.com", CTX)
    token = mail_token(await _mails(services), "/reset-password")
    await services.accounts.recovery.reset_password(token, NEW_PASSWORD, CTX)
    await services.accounts.credentials.authenticate("ada@example.com", NEW_PASSWORD, CTX)


# ---- one-time tokens ---------------------------------------------------------------------------


async def test_a_verification_token_verifies_once(services: Services) -> None:
    identity = await _register(services)
    token = mail_token(await _mails(services), "/verify-email")
    await services.accounts.verification.verify(token, CTX)
    assert (await services.accounts.users.get(identity.id)).email_verified_at is not None
    with pytest.raises(InvalidOneTimeToken):
        await services.accounts.verification.verify(token, CTX)
    with pytest.raises(InvalidOneTimeToken):
        await services.accounts.verification.verify("x" * 43, CTX)


async def test_a_reset_token_sets_a_new_password_once(services: Services) -> None:
    await _register(services)
    await services.accounts.recovery.forgot_password("ada@example.com", CTX)
    token = mail_token(await _mails(services), "/reset-password")
    # A weak choice is refused without spending the token.
    with pytest.raises(WeakPassword):
        await services.accounts.recovery.reset_password(token, "short", CTX)
    await services.accounts.recovery.reset_password(token, NEW_PASSWORD, CTX)
    with pytest.raises(InvalidOneTimeToken):
        await services.accounts.recovery.reset_password(token, NEW_PASSWORD + "!", CTX)
    await services.accounts.credentials.authenticate("ada@example.com", NEW_PASSWORD, CTX)
    with pytest.raises(InvalidCredentials):
        await services.accounts.credentials.authenticate("ada@example.com", PASSWORD, CTX)


async def test_an_expired_token_is_refused(services: Services) -> None:
    await _register(services)
    await services.accounts.recovery.forgot_password("ada@example.com", CTX)
    token = mail_token(await _mails(services), "/reset-password")
    async with services.db.transaction() as s:
        await s.execute(update(OneTimeToken).values(expires_at=utcnow()))
    with pytest.raises(InvalidOneTimeToken):
        await services.accounts.recovery.reset_password(token, NEW_PASSWORD, CTX)
    await services.accounts.credentials.authenticate("ada@example.com", PASSWORD, CTX)


async def test_forgot_password_for_an_unknown_email_sends_nothing(services: Services) -> None:
    await services.accounts.recovery.forgot_password("nobody@example.com", CTX)
    assert await _mails(services) == []
