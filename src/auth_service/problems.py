"""The problem catalogue (RFC 9457): every error the service answers with, named once.

A package that raises an expected failure declares its problem where it defines the exception
(``@problem(...)`` on a ``ServiceError`` subclass). The web layer answers any ``ServiceError``
from the catalogue without importing the package that raised it, and the API reference lists
the catalogue (``catalogue()``), so the two cannot drift apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

PROBLEM_BASE = "https://auth-service.dev/problems/"


@dataclass(frozen=True)
class Problem:
    """One stable problem type: its status, the last segment of its ``type`` URI, its title.

    ``challenge``: a 401 that carries ``WWW-Authenticate`` (RFC 9110 section 11.6.1), so
    clients know which scheme failed. ``description``: when it is answered, for the API
    reference (docs/api.md is generated from the catalogue); never sent.
    """

    status: int
    slug: str
    title: str
    challenge: bool = False
    description: str = field(default="", compare=False)

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug


_CATALOGUE: dict[str, Problem] = {}


def define(
    status: int, slug: str, title: str, *, challenge: bool = False, description: str = ""
) -> Problem:
    """Add a problem type to the catalogue; one slug means one status and title everywhere."""
    entry = Problem(status, slug, title, challenge, description)
    existing = _CATALOGUE.setdefault(slug, entry)
    if existing != entry:
        raise ValueError(f"problem {slug!r} is defined twice, differently")
    return entry


def catalogue() -> list[Problem]:
    """Every problem type defined so far, by status then slug."""
    return sorted(_CATALOGUE.values(), key=lambda p: (p.status, p.slug))


class ServiceError(Exception):
    """An expected failure that the HTTP faces answer with its class's problem.

    Subclasses are declared with ``@problem``. ``retry_after_seconds`` (when set) becomes
    ``Retry-After``; ``extensions`` adds members to the problem body (never secrets).
    """

    problem: ClassVar[Problem]
    retry_after_seconds: int | None = None

    def extensions(self) -> dict[str, Any]:
        return {}


E = TypeVar("E", bound=type[ServiceError])


def problem(status: int, slug: str, title: str, *, challenge: bool = False) -> Callable[[E], E]:
    """Class decorator: the problem this exception answers with. The class docstring's first
    paragraph describes it in the API reference."""

    def declare(cls: E) -> E:
        doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "").split("\n\n", 1)[0]
        description = " ".join(doc.split()).replace("``", "`")  # reST literals in Markdown
        cls.problem = define(status, slug, title, challenge=challenge, description=description)
        return cls

    return declare


def field_errors(field: str, reasons: list[str]) -> dict[str, Any]:
    """The ``errors`` extension member: which field failed and why (never its value)."""
    return {"errors": [{"field": field, "reasons": reasons}]}
