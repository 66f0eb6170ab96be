"""Email normal form: NFKC and case folding of the local part; mixed scripts refused for new
accounts (ADR 0012)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auth_service.accounts.emails import (
    MIXED_SCRIPTS,
    fold,
    lookup_form,
    new_account_email,
    normalize_email,
)
from auth_service.accounts.errors import InvalidEmail


@pytest.mark.parametrize(
    ("lookalike", "normal"),
    [
        ("\uff41da@example.com", "ada@example.com"),  # full-width a
        ("\uff41\uff44\uff41\uff20\uff45xample.com", "ada@example.com"),  # full-width @ too
        ("ADA@EXAMPLE.COM", "ada@example.com"),
        ("\ufb01nn@example.com", "finn@example.com"),  # the "fi" ligature
        ("Straße@example.com", "strasse@example.com"),
        ("ΣΊΣΥΦΟΣ@example.com", "σίσυφοσ@example.com"),  # final sigma folds too
        ("  ada@example.com\u3000", "ada@example.com"),  # ideographic space is a space
    ],
)
def test_lookalikes_fold_to_one_address(lookalike: str, normal: str) -> None:
    assert normalize_email(lookalike) == normal
    assert lookup_form(lookalike) == normal


def test_the_domain_keeps_its_idna_form_and_is_not_case_folded() -> None:
    # IDNA 2008 tells straße.de and strasse.de apart: folding ß would mail another domain.
    assert normalize_email("kim@STRASSE.de") == "kim@strasse.de"
    assert normalize_email("kim@straße.de") == "kim@straße.de"
    assert normalize_email("kim@BÜCHER.example") == "kim@bücher.example"


@pytest.mark.parametrize(
    "mixed",
    [
        "\u0430d\u0430@example.com",  # Cyrillic a, Latin d
        "p\u0430ypal@example.com",
        "\u03bfpenai@example.com",  # Greek omicron
        "admin\u0456@example.com",  # Cyrillic i
    ],
)
def test_new_accounts_refuse_local_parts_that_mix_scripts(mixed: str) -> None:
    with pytest.raises(InvalidEmail) as refused:
        new_account_email(mixed)
    assert refused.value.reason == MIXED_SCRIPTS
    # Signing in and recovery still find an existing account with such an address.
    assert normalize_email(mixed) == lookup_form(mixed)


@pytest.mark.parametrize(
    "single",
    [
        "ada.lovelace+tag_1@example.com",
        "\u0430\u0434\u0430@example.com",  # all Cyrillic: a real Russian name, not mixed
        "δοκιμή@example.com",
        "山田太郎@example.jp",
        "やまだ山田ヤマダ-2@example.jp",  # Japanese: Han, Hiragana, Katakana
        "tanaka山田@example.jp",  # Latin with Japanese is one writing system
        "김민준@example.kr",
        "कुमार@example.in",  # Devanagari
        "0123456789@example.com",  # only Common characters
    ],
)
def test_one_writing_system_is_accepted(single: str) -> None:
    assert new_account_email(single) == normalize_email(single)


_chars = st.characters(codec="utf-8", exclude_categories=("Cs",))


@settings(max_examples=300)
@given(st.text(_chars, max_size=60))
def test_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


@settings(max_examples=300)
@given(st.text(_chars, min_size=1, max_size=20), st.sampled_from(["example.com", "bücher.de"]))
def test_normal_forms_are_fixed_points(local: str, domain: str) -> None:
    try:
        normalized = normalize_email(f"{local}@{domain}")
    except InvalidEmail:
        return
    assert normalize_email(normalized) == normalized
    assert lookup_form(normalized) == normalized
