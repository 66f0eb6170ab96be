"""Email addresses as account identifiers: syntax check and the normal form we compare.

Decisions and their reasons: docs/adr/0012-email-normal-form-and-mixed-script-local-parts.md.
"""

from __future__ import annotations

import unicodedata

import regex
from email_validator import EmailNotValidError, validate_email

from auth_service.accounts.errors import InvalidEmail

MAX_EMAIL_LENGTH = 320

MIXED_SCRIPTS = (
    "must not mix alphabets before the @ (for example Latin with Cyrillic letters): "
    "such an address can look exactly like another one"
)

# Scripts a local part may be written in (UAX #31 tables 4 and 7: the Recommended and the
# Limited Use scripts, those of living languages), and the combinations that are one
# writing system (UTS #39 section 5.2, "Highly Restrictive"). Characters of the Common and
# Inherited scripts (digits, "." "_" "-" "+", combining marks) go with any of them.
_SCRIPTS = (
    # Recommended
    "Arab", "Armn", "Beng", "Bopo", "Cyrl", "Deva", "Ethi", "Geor", "Grek", "Gujr", "Guru",
    "Hang", "Hani", "Hebr", "Hira", "Kana", "Khmr", "Knda", "Laoo", "Latn", "Mlym", "Mymr",
    "Orya", "Sinh", "Taml", "Telu", "Thaa", "Thai", "Tibt",
    # Limited Use
    "Adlm", "Bali", "Bamu", "Batk", "Cakm", "Cans", "Cham", "Cher", "Hmnp", "Java", "Kali",
    "Lana", "Lepc", "Limb", "Lisu", "Mand", "Mtei", "Newa", "Nkoo", "Olck", "Osge", "Plrd",
    "Rohg", "Saur", "Sund", "Sylo", "Syrc", "Talu", "Tfng", "Vaii", "Wcho", "Yiii",
)  # fmt: skip
_WRITING_SYSTEMS = (
    *((script,) for script in _SCRIPTS),
    ("Latn", "Hani", "Hira", "Kana"),  # Japanese
    ("Latn", "Hani", "Bopo"),  # Chinese with Bopomofo
    ("Latn", "Hani", "Hang"),  # Korean
)
_ONE_WRITING_SYSTEM = tuple(
    regex.compile("[\\p{scx=Zyyy}\\p{scx=Zinh}" + "".join(f"\\p{{scx={s}}}" for s in group) + "]*")
    for group in _WRITING_SYSTEMS
)


def fold(text: str) -> str:
    """NFKC, then full case folding, then NFKC again (folding can undo a normal form).

    Look-alikes that are the same letters (full-width U+FF41 for ``a``, ligatures,
    ``ß``/``ss``, the Greek final sigma, any case) become one string.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def normalize_email(raw: str) -> str:
    """Syntax-check and normalise (the form stored, compared and mailed to).

    The whole input is NFKC-normalised first (full-width U+FF20 and U+FF41 are the ASCII
    ``@`` and ``a``); email-validator checks the syntax and gives the domain's IDNA normal
    form (UTS #46 mapping: lower case, compatibility forms). The local part is then
    ``fold``-ed. The domain is not case-folded further: folding can turn one registered
    domain into another (``straße.de`` and ``strasse.de`` are different IDNA 2008 names).

    Comparing the local part case-insensitively is what users expect and what every large
    identity provider does in practice. Raises InvalidEmail.
    """
    candidate = unicodedata.normalize("NFKC", raw).strip()
    if not candidate or len(candidate) > MAX_EMAIL_LENGTH:
        raise InvalidEmail("must be a valid email address of at most 320 characters")
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    return f"{fold(result.local_part)}@{result.domain}"


def new_account_email(raw: str) -> str:
    """``normalize_email`` for an address that a new account will use: also refuses a local
    part whose letters mix writing systems (UTS #39 mixed-script detection), the look-alike
    no folding can unify (Cyrillic U+0430 next to Latin ``d``). Existing accounts keep signing
    in with such an address; only new ones are refused. Raises InvalidEmail."""
    normalized = normalize_email(raw)
    local = normalized.rsplit("@", 1)[0]
    if not any(system.fullmatch(local) for system in _ONE_WRITING_SYSTEM):
        raise InvalidEmail(MIXED_SCRIPTS)
    return normalized


def lookup_form(raw: str) -> str:
    """The key a sign-in attempt is counted under, valid address or not: the normal form
    when there is one, so limits and lockout cannot be dodged by changing case or width."""
    try:
        return normalize_email(raw)
    except InvalidEmail:
        return fold(raw).strip()[:MAX_EMAIL_LENGTH]
