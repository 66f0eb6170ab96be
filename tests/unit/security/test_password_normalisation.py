"""Passwords are hashed in NFKC; hashes of the raw input still verify, at equal cost."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator

import pytest
from argon2 import PasswordHasher as Argon2

from auth_service.config.settings import PasswordSettings
from auth_service.security.passwords import PasswordHasher, VerifyResult, normalize_password

CHEAP = PasswordSettings(argon2_memory_cost_kib=1024, argon2_time_cost=1, hash_concurrency=1)
PHRASE = "Grüße aus Köln, señor"
NFC = unicodedata.normalize("NFC", PHRASE)
NFD = unicodedata.normalize("NFD", PHRASE)
NFKC = unicodedata.normalize("NFKC", PHRASE)


class CountingHasher(PasswordHasher):
    """The real hasher, counting the single verifications it makes."""

    checks = 0

    def _check(self, encoded: str, password: str) -> VerifyResult:
        self.checks += 1
        return super()._check(encoded, password)


@pytest.fixture
async def hasher() -> AsyncIterator[CountingHasher]:
    made = CountingHasher(CHEAP)
    yield made
    made.close()


def test_the_phrase_really_differs_between_forms() -> None:
    assert NFC != NFD
    assert normalize_password(NFC) == normalize_password(NFD) == NFKC
    assert normalize_password("\uff21\ufb01") == "Afi"  # full-width A, the "fi" ligature


async def test_a_hash_is_of_the_nfkc_form(hasher: CountingHasher) -> None:
    encoded = await hasher.hash(NFD)
    assert Argon2().verify(encoded, NFKC)
    for form in (NFC, NFD, NFKC):
        assert await hasher.verify(encoded, form) == VerifyResult(True, False)


async def test_a_raw_legacy_hash_verifies_and_asks_for_a_rehash(hasher: CountingHasher) -> None:
    legacy = Argon2(memory_cost=1024, time_cost=1, parallelism=1).hash(NFD)
    assert await hasher.verify(legacy, NFD) == VerifyResult(True, needs_rehash=True)
    # Another form of the phrase is not the raw input that was hashed.
    assert not (await hasher.verify(legacy, NFC)).ok


async def test_unknown_accounts_cost_as_many_checks_as_a_wrong_password(
    hasher: CountingHasher,
) -> None:
    """No enumeration through the fallback: a wrong non-NFKC password for a real account
    costs two checks; the dummy verification of an unknown account costs the same two."""
    await hasher.warm_up()
    encoded = await hasher.hash("the real pass phrase")
    for attempt, expected in ((NFD, 2), ("ascii only guess", 1)):
        hasher.checks = 0
        assert not (await hasher.verify(encoded, attempt)).ok
        real = hasher.checks
        hasher.checks = 0
        await hasher.verify_dummy(attempt)
        assert (real, hasher.checks) == (expected, expected)
