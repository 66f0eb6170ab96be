"""The SMTP transport builds its TLS context once per certificate policy, not per delivery."""

from __future__ import annotations

import ssl

from auth_service.config.settings import MailSettings
from auth_service.mail.service import SmtpTransport


def test_one_context_per_certificate_policy() -> None:
    transport = SmtpTransport(MailSettings(smtp_validate_certs=True))
    first = transport._tls_context()
    assert transport._tls_context() is first
    assert first.verify_mode == ssl.CERT_REQUIRED
    assert first.check_hostname

    transport.settings = MailSettings(smtp_validate_certs=False)  # a reload changes the policy
    relaxed = transport._tls_context()
    assert relaxed is not first
    assert relaxed.verify_mode == ssl.CERT_NONE
    assert not relaxed.check_hostname
    assert transport._tls_context() is relaxed
