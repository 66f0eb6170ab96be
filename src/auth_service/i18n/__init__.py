"""Message catalogues (Babel ``.po`` files) for the hosted pages and emails, and choosing one.

One catalogue per language under ``locales/<language>/LC_MESSAGES/messages.po``; adding a
language is adding a catalogue (docs/ui.md). Catalogues are compiled in memory when first
used, so no compiled ``.mo`` file is kept in the repository or needs a build step.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from babel import Locale, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).with_name("locales")
DOMAIN = "messages"
SOURCE_LANGUAGE = "en"  # the language of the msgids
MAX_ACCEPT_LANGUAGE_ENTRIES = 20


def N_(message: str) -> str:
    """Mark ``message`` for the catalogues where it is defined; it is translated where it is
    shown, in the reader's language."""
    return message


@cache
def languages() -> tuple[str, ...]:
    """The languages with a catalogue, sorted."""
    return tuple(
        sorted(p.parent.parent.name for p in LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    )


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``language`` (the untranslated msgids when there is none)."""
    path = LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language not in languages():
        return gettext.NullTranslations()
    with path.open("rb") as fh:
        catalogue = read_po(fh, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


# Each language's own name for itself, for the language switch of every page. Asking babel
# (``Locale.parse(code).get_display_name(code)``) loads that language's whole CLDR data, which
# stays in babel's cache: ~5.7 MiB in every worker for two names (ADR 0437).
# tests/unit/i18n checks that each entry is babel's name and that every catalogue has one.
OWN_NAMES = {"de": "Deutsch", "en": "English"}


def display_name(language: str) -> str:
    """The language's own name for itself (``Deutsch``), for a language switch."""
    name = OWN_NAMES.get(language)
    if name is None:  # a catalogue added without its name above: correct, at a memory cost
        name = Locale.parse(language).get_display_name(language) or language
    return name[:1].upper() + name[1:]


def parse_accept_language(header: str | None) -> list[str]:
    """Languages of an ``Accept-Language`` header (RFC 9110 section 12.5.4), best first."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:MAX_ACCEPT_LANGUAGE_ENTRIES]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*" or len(tag) > 35:
            continue
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if quality > 0:
            weighted.append((-quality, position, tag.replace("_", "-")))
    return [tag for _, _, tag in sorted(weighted)]


def choose(preferences: Iterable[str], default: str) -> str:
    """The first preferred language we have a catalogue for (``de-AT`` matches ``de``);
    ``default`` (or the source language) otherwise."""
    available = languages()
    wanted = [p.lower() for p in preferences if p]
    found = negotiate_locale(wanted, available, sep="-") if wanted else None
    if found is None:
        for tag in wanted:  # a region we do not have: its language
            base = tag.split("-", 1)[0].lower()
            if base in available:
                return base
    if found:
        return found
    return default if default in available else SOURCE_LANGUAGE
