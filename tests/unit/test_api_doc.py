"""docs/api.md agrees with the problem catalogue: its error table is generated from it, and
every "status `slug`" the prose names is the catalogue's status for that slug."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import auth_service.app  # noqa: F401 - declares every problem the app answers
from auth_service.problems import catalogue

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "api.md"
GENERATOR = REPO / "scripts" / "gen_api_errors.py"
# "401 `invalid-refresh-token` / `refresh-token-reused`", "429 `rate-limited`"
_MENTION = re.compile(r"\b([1-5]\d\d)\*{0,2} ((?:`[a-z][a-z-]+`(?: / )?)+)")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_api_errors", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_error_table_is_generated_from_the_catalogue() -> None:
    # Fails when a problem is added, removed or changed without `python scripts/gen_api_errors.py`.
    assert _generator().is_current()


def test_every_status_and_slug_named_in_the_prose_is_the_catalogues() -> None:
    statuses = {p.slug: p.status for p in catalogue()}
    text = DOC.read_text(encoding="utf-8")
    mentions = 0
    wrong = []
    for match in _MENTION.finditer(text):
        status = int(match.group(1))
        for slug in re.findall(r"`([a-z-]+)`", match.group(2)):
            if slug not in statuses:
                continue  # a limiter name or a config key in backquotes, not a problem
            mentions += 1
            if statuses[slug] != status:
                wrong.append(f"{status} {slug} (catalogue: {statuses[slug]})")
    assert not wrong, wrong
    assert mentions >= 30, mentions  # the pattern really reads the prose


def test_every_problem_is_described() -> None:
    undescribed = [p.slug for p in catalogue() if not p.description]
    assert not undescribed, undescribed


def test_the_prose_names_no_problem_that_does_not_exist() -> None:
    # A backquoted kebab-case word after "type" or in an Errors line that is no problem slug
    # is a renamed or removed problem.
    known = {p.slug for p in catalogue()}
    text = DOC.read_text(encoding="utf-8")
    named = set()
    for line in text.splitlines():
        if line.startswith("Errors:") or " 401 `" in line or " 422 `" in line:
            named.update(re.findall(r"\b[1-5]\d\d `([a-z][a-z-]+)`", line))
    assert named, "no Errors lines found"
    assert named <= known, sorted(named - known)
