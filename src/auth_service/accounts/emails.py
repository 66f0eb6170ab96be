"""Email addresses as account identifiers: syntax check and the normal form we compare."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from auth_service.accounts.errors import InvalidEmail

MAX_EMAIL_LENGTH = 320


def normalize_email(raw: str) -> str:
    """Syntax-check and normalise: NFC, IDNA domain, then case-folded as a whole.

    Comparing case-insensitively (including the local part) is what users expect, and what
    every large identity provider does in practice.
    """
    candidate = raw.strip()
    if not candidate or len(candidate) > MAX_EMAIL_LENGTH:
        raise InvalidEmail("must be a valid email address of at most 320 characters")
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    return result.normalized.lower()


def lookup_form(raw: str) -> str:
    """The key a sign-in attempt is counted under, valid address or not: the normal form
    when there is one, so limits and lockout cannot be dodged by changing case."""
    try:
        return normalize_email(raw)
    except InvalidEmail:
        return raw.strip().lower()[:MAX_EMAIL_LENGTH]
