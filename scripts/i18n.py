"""Keep the message catalogues in step with the code: `make i18n`.

Extracts every translatable string (Python ``_``/``N_``/``gettext`` calls and the page
templates) and updates each language's ``messages.po``: new strings are added untranslated,
vanished ones dropped. English is the source language: its catalogue repeats each msgid.
``--check`` changes nothing and exits 1 when a catalogue lacks a string of the code, keeps
one the code no longer has, or leaves one untranslated (the test suite runs it).

Adding a language: `python scripts/i18n.py --add fr`, translate its messages.po.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "auth_service"
I18N = PACKAGE / "i18n"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
METHODS = [
    ("**/templates/**.html", "jinja2"),
    ("**.py", "python"),
]
OPTIONS = {"**/templates/**.html": {"trim_blocks": "True", "lstrip_blocks": "True"}}
SOURCE_LANGUAGE = "en"


def extract() -> Catalog:
    template = Catalog(project="auth-service", fuzzy=False)
    for _filename, _lineno, message, comments, context in extract_from_dir(
        PACKAGE, METHODS, keywords=KEYWORDS, options_map=OPTIONS
    ):
        template.add(message, None, [], auto_comments=comments, context=context)
    return template


def _po_path(language: str) -> Path:
    return I18N / "locales" / language / "LC_MESSAGES" / "messages.po"


def _render(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_po(out, catalog, no_location=True, sort_output=True, width=100, omit_header=False)
    return out.getvalue()


def updated(language: str, template: Catalog) -> Catalog:
    path = _po_path(language)
    if path.exists():
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=language)
    else:
        catalog = Catalog(locale=language, project="auth-service", fuzzy=False)
    catalog.update(template, no_fuzzy_matching=True)
    catalog.obsolete.clear()
    catalog.fuzzy = False
    catalog.header_comment = (
        f"# Messages of auth-service's hosted pages and emails: {language}.\n"
        "# Translate the msgstr lines; `make i18n` keeps the msgids in step with the code."
    )
    catalog.msgid_bugs_address = "https://auth-service.dev/issues"
    catalog.last_translator = "auth-service maintainers"
    catalog.language_team = language
    if language == SOURCE_LANGUAGE:
        for message in catalog:
            if message.id and _empty(message.string):
                message.string = message.id
    return catalog


def _empty(string: str | tuple[str, ...]) -> bool:
    """No translation: an empty msgstr, or a plural entry with any form missing."""
    return not string or (isinstance(string, tuple) and not all(string))


def untranslated(catalog: Catalog) -> list[str]:
    return [str(m.id) for m in catalog if m.id and _empty(m.string)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument("--add", metavar="LANGUAGE", help="start a catalogue for a language")
    args = parser.parse_args()
    template = extract()
    languages = sorted(p.parent.parent.name for p in I18N.glob("locales/*/LC_MESSAGES/*.po"))
    if args.add:
        languages = sorted({*languages, args.add})
    problems: list[str] = []
    wanted = {m.id for m in template if m.id}
    for language in languages:
        path = _po_path(language)
        if args.check:
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=language)
            have = {m.id for m in catalog if m.id}
            if have != wanted:
                problems.append(
                    f"{path.relative_to(ROOT)} is out of date: "
                    f"{len(wanted - have)} missing, {len(have - wanted)} no longer used"
                )
        else:
            catalog = updated(language, template)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_render(catalog))
        missing = untranslated(catalog)
        if missing:
            problems.append(f"{language}: {len(missing)} untranslated, e.g. {missing[0]!r}")
    for problem in problems:
        print(f"i18n: {problem}", file=sys.stderr)
    if problems and args.check:
        print("i18n: run `make i18n` and translate what it lists", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
