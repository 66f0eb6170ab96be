"""Password policy after NIST SP 800-63B section 5.1.1.2.

Length counts Unicode code points after NFKC normalisation; no composition rules; refuse
passwords found in a list of common passwords and ones containing the email's local part.
"""

from __future__ import annotations

import gzip
from array import array
from collections.abc import Iterable, Iterator
from functools import lru_cache
from importlib import resources

from auth_service.config.settings import PasswordSettings
from auth_service.i18n import N_
from auth_service.security.passwords import normalize_password


class Wordlist:
    """A set of words for membership tests, held as one bytes object of the sorted, distinct
    UTF-8 words and an array of where each starts: ~0.3 MB for the 20,000 common passwords,
    which a frozenset of str kept at 3.1 MB of objects in every worker (ADR 0437). A lookup is
    a binary search (15 comparisons)."""

    def __init__(self, words: Iterable[str]) -> None:
        encoded = sorted({word.encode() for word in words if "\n" not in word})
        self._blob = b"\n".join(encoded)
        self._starts = array("I")
        position = 0
        for word in encoded:
            self._starts.append(position)
            position += len(word) + 1

    def _at(self, index: int) -> bytes:
        start = self._starts[index]
        end = self._blob.find(b"\n", start)
        return self._blob[start:] if end < 0 else self._blob[start:end]

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str):
            return False
        needle = word.encode()
        low, high = 0, len(self._starts)
        while low < high:
            middle = (low + high) // 2
            found = self._at(middle)
            if found < needle:
                low = middle + 1
            elif found > needle:
                high = middle
            else:
                return True
        return False

    def __len__(self) -> int:
        return len(self._starts)

    def __iter__(self) -> Iterator[str]:
        return (self._at(i).decode() for i in range(len(self._starts)))


@lru_cache(maxsize=1)
def common_passwords() -> Wordlist:
    """The common passwords, casefolded."""
    data = resources.files("auth_service.accounts").joinpath("data/common-passwords.txt.gz")
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        return Wordlist(line.strip().casefold() for line in fh if line.strip())


def too_long(password: str, settings: PasswordSettings) -> bool:
    """Cheap check made before anything else touches the password (no hashing of huge input)."""
    return (
        len(password) > settings.max_length * 4
        or len(normalize_password(password)) > settings.max_length
    )


class Reason(str):
    """A reason the policy refuses a password: the English text (what the API answers), with
    its template and parameters so the hosted pages can show it in the reader's language."""

    template: str
    params: dict[str, int]

    def __new__(cls, template: str, **params: int) -> Reason:
        reason = super().__new__(cls, template % params)
        reason.template = template
        reason.params = params
        return reason


# The templates, named once (the pages' catalogues translate these exact strings).
TOO_LONG = N_("must be at most %(max)d characters")
TOO_SHORT = N_("must be at least %(min)d characters")
TOO_COMMON = N_("is too common: it appears in lists of breached passwords")
CONTAINS_EMAIL = N_("must not contain your email address")
ONLY_SPACES = N_("must not be only spaces")


def check_password(
    password: str, settings: PasswordSettings, email: str | None = None
) -> list[Reason]:
    """Reasons the password is refused; empty when it is acceptable."""
    if too_long(password, settings):
        return [Reason(TOO_LONG, max=settings.max_length)]
    reasons: list[Reason] = []
    normalized = normalize_password(password)
    if len(normalized) < settings.min_length:
        reasons.append(Reason(TOO_SHORT, min=settings.min_length))
    folded = normalized.casefold()
    if settings.reject_common and folded in common_passwords():
        reasons.append(Reason(TOO_COMMON))
    if email:
        local = email.split("@", 1)[0].casefold()
        if len(local) >= 3 and local in folded:
            reasons.append(Reason(CONTAINS_EMAIL))
    if normalized.strip() == "" and normalized:
        reasons.append(Reason(ONLY_SPACES))
    return reasons
