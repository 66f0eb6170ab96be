"""The message catalogues: complete, chosen by the reader's preferences."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from auth_service import i18n

ROOT = Path(__file__).resolve().parents[3]


def test_every_catalogue_has_every_string_of_the_code_translated() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "i18n.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_english_and_german_ship() -> None:
    assert {"en", "de"} <= set(i18n.languages())
    assert i18n.translations("de").gettext("Sign in") == "Anmelden"
    assert i18n.translations("en").gettext("Sign in") == "Sign in"
    assert i18n.translations("xx").gettext("Sign in") == "Sign in"
    assert i18n.display_name("de") == "Deutsch"


@pytest.mark.parametrize("language", i18n.languages())
def test_every_catalogue_has_its_own_name_and_it_is_babels(language: str) -> None:
    from babel import Locale

    # The table spares every worker babel's CLDR data (ADR 0437): it must say what babel says.
    babel_name = Locale.parse(language).get_display_name(language)
    assert babel_name is not None
    assert i18n.OWN_NAMES[language] == babel_name[:1].upper() + babel_name[1:]
    assert i18n.display_name(language) == i18n.OWN_NAMES[language]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", ["de-DE", "de", "en"]),
        ("en;q=0.1, de", ["de", "en"]),
        ("fr;q=0, de;q=0.5", ["de"]),
        ("*", []),
        ("de;q=abc, en", ["en"]),
        (None, []),
        ("x" * 100, []),
    ],
)
def test_accept_language(header: str | None, expected: list[str]) -> None:
    assert i18n.parse_accept_language(header) == expected


@pytest.mark.parametrize(
    ("preferences", "expected"),
    [
        (["de-AT"], "de"),
        (["fr", "de"], "de"),
        (["fr"], "en"),
        ([], "en"),
        (["EN-gb"], "en"),
    ],
)
def test_choose(preferences: list[str], expected: str) -> None:
    assert i18n.choose(preferences, "en") == expected
