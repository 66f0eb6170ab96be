"""The SMTP transport's TLS context: built once (the system CA store is read once, not per
message and per retry) and as the settings say."""

from __future__ import annotations

import ssl

from auth_service.config.settings import MailSettings
from auth_service.mail.service import SmtpTransport


def test_the_tls_context_is_built_once_and_verifies_by_default() -> None:
    transport = SmtpTransport(MailSettings(backend="smtp"))
    context = transport._context()
    assert transport._context() is context
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname


def test_the_tls_context_skips_verification_only_when_told() -> None:
    context = SmtpTransport(MailSettings(backend="smtp", smtp_validate_certs=False))._context()
    assert context.verify_mode is ssl.CERT_NONE
    assert not context.check_hostname
