"""Password policy after NIST SP 800-63B section 5.1.1.2.

Length counts Unicode code points after NFKC normalisation; no composition rules; refuse
passwords found in a list of common passwords and ones containing the email's local part.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources

from auth_service.config.settings import PasswordSettings
from auth_service.security.passwords import normalize_password


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    data = resources.files("auth_service.accounts").joinpath("data/common-passwords.txt.gz")
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip().casefold() for line in fh if line.strip())


def too_long(password: str, settings: PasswordSettings) -> bool:
    """Cheap check made before anything else touches the password (no hashing of huge input)."""
    return (
        len(password) > settings.max_length * 4
        or len(normalize_password(password)) > settings.max_length
    )


def check_password(
    password: str, settings: PasswordSettings, email: str | None = None
) -> list[str]:
    """Reasons the password is refused; empty when it is acceptable."""
    reasons: list[str] = []
    if too_long(password, settings):
        return [f"must be at most {settings.max_length} characters"]
    normalized = normalize_password(password)
    if len(normalized) < settings.min_length:
        reasons.append(f"must be at least {settings.min_length} characters")
    folded = normalized.casefold()
    if settings.reject_common and folded in common_passwords():
        reasons.append("is too common: it appears in lists of breached passwords")
    if email:
        local = email.split("@", 1)[0].casefold()
        if len(local) >= 3 and local in folded:
            reasons.append("must not contain your email address")
    if normalized.strip() == "" and normalized:
        reasons.append("must not be only spaces")
    return reasons
