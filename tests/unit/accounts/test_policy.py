"""Password policy (NIST SP 800-63B) and email normalisation, as properties."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from auth_service.accounts.emails import normalize_email
from auth_service.accounts.errors import InvalidEmail
from auth_service.accounts.policy import check_password, common_passwords, too_long
from auth_service.config.settings import PasswordSettings

POLICY = PasswordSettings()
# Printable code points from every script, no surrogates or controls.
_chars = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
_common = sorted(common_passwords())


def _swapcase(text: str, mask: list[bool]) -> str:
    return "".join(c.swapcase() if m else c for c, m in zip(text, mask, strict=False))


def _length(password: str) -> int:
    return len(unicodedata.normalize("NFKC", password))


@settings(max_examples=60)
@given(st.text(_chars, min_size=POLICY.max_length + 1, max_size=600))
def test_longer_than_max_after_nfkc_is_refused_alone(password: str) -> None:
    assume(_length(password) > POLICY.max_length)
    assert check_password(password, POLICY) == [f"must be at most {POLICY.max_length} characters"]
    assert too_long(password, POLICY)


@settings(max_examples=60)
@given(st.text(_chars, min_size=0, max_size=POLICY.min_length + 4))
def test_shorter_than_min_after_nfkc_is_refused(password: str) -> None:
    assume(_length(password) < POLICY.min_length)
    reasons = check_password(password, POLICY)
    assert f"must be at least {POLICY.min_length} characters" in reasons


def test_length_counts_code_points_after_nfkc() -> None:
    ligature = "\ufb01"  # "ﬁ": one code point, two after NFKC
    assert check_password(ligature * (POLICY.max_length // 2), POLICY) == []
    assert check_password(ligature * (POLICY.max_length // 2 + 1), POLICY) != []
    accent = "e\u0301"  # two code points, one ("é") after NFKC
    assert check_password(accent * POLICY.min_length, POLICY) == []
    assert check_password(accent * (POLICY.min_length - 1), POLICY) != []
    # Astral code points (emoji) are one character each, not two UTF-16 units.
    assert check_password("\U0001f600" * POLICY.min_length, POLICY) == []


@settings(max_examples=60)
@given(st.sampled_from(_common), st.lists(st.booleans(), min_size=128, max_size=128))
def test_common_passwords_are_refused_in_any_case(word: str, mask: list[bool]) -> None:
    mixed = _swapcase(word, mask)
    reasons = check_password(mixed, POLICY)
    assert any("too common" in r for r in reasons), (mixed, reasons)


def test_common_list_is_shipped_and_folded() -> None:
    assert len(_common) >= 1000
    assert "password" in common_passwords()
    assert all(w == w.casefold() for w in _common[:5000])


_local = st.from_regex(r"[a-z][a-z0-9]{2,15}", fullmatch=True)


@settings(max_examples=60)
@given(_local, st.text(_chars, max_size=20), st.text(_chars, max_size=20))
def test_passwords_containing_the_email_local_part_are_refused(
    local: str, before: str, after: str
) -> None:
    password = before + local.upper() + after
    assume(_length(password) <= POLICY.max_length)
    assume(local in unicodedata.normalize("NFKC", password).casefold())
    reasons = check_password(password, POLICY, email=f"{local}@example.com")
    assert "must not contain your email address" in reasons


@settings(max_examples=100)
@given(st.text(_chars, min_size=POLICY.min_length, max_size=POLICY.max_length))
def test_everything_else_is_accepted(password: str) -> None:
    normalized = unicodedata.normalize("NFKC", password)
    assume(POLICY.min_length <= len(normalized) <= POLICY.max_length)
    assume(normalized.casefold() not in common_passwords())
    assume(normalized.strip())
    assume("zed" not in normalized.casefold())
    assert check_password(password, POLICY, email="zed@example.com") == []


# ---- normalize_email ---------------------------------------------------------------------------

# "--" in the 3rd and 4th places is reserved for IDNA (xn--...): email-validator refuses it.
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True).filter(
    lambda label: label[2:4] != "--"
)
_ascii_email = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9_+-]{0,20}[A-Za-z0-9])?", fullmatch=True),
    st.lists(_label, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)


@settings(max_examples=100)
@given(_ascii_email, st.lists(st.booleans(), min_size=80, max_size=80))
def test_normalize_email_is_idempotent_and_case_insensitive(email: str, mask: list[bool]) -> None:
    normalized = normalize_email(email)
    assert normalize_email(normalized) == normalized
    assert normalize_email(_swapcase(email, mask)) == normalized
    assert normalize_email(f"  {email.upper()}\t") == normalized
    assert normalized == normalized.lower()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("José@Example.com", "jose\u0301@example.com"),
        ("ÉLODIE@EXAMPLE.COM", "élodie@example.com"),
        ("kim@BÜCHER.example", "kim@bücher.example"),
        ("ΔΟΚΙΜΉ@example.com", "δοκιμή@example.com"),
    ],
)
def test_normalize_email_unifies_unicode_case_and_forms(a: str, b: str) -> None:
    assert normalize_email(a) == normalize_email(b)
    assert normalize_email(normalize_email(a)) == normalize_email(a)


@settings(max_examples=200)
@given(st.text(max_size=80))
def test_normalize_email_refuses_with_invalid_email_only(raw: str) -> None:
    try:
        normalized = normalize_email(raw)
    except InvalidEmail:
        return
    assert normalize_email(normalized) == normalized
    assert "@" in normalized
