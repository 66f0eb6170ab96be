"""Which schema revision the code expects and which one a database is at, without Alembic.

Every serving worker checks the schema at start-up, on a database reload and in its readiness
check. Asking Alembic for the head loads its script directory (Alembic, Mako and every
migration module: ~12 MiB per worker) for two strings. The head is read here from the
migration files' ``revision``/``down_revision`` assignments instead, and the current
revision from Alembic's own table; ``auth-service migrate`` (``db.migrate``) still runs
Alembic. ``tests/unit/db/test_revision.py`` holds the two answers equal to Alembic's.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

VERSIONS_DIR = Path(__file__).with_name("migrations") / "versions"
VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps


def _assignments(path: Path) -> dict[str, object]:
    """The module-level ``revision`` and ``down_revision`` literals of a migration file."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, value = node.target.id, node.value
        elif (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            name, value = node.targets[0].id, node.value
        else:
            continue
        if name in ("revision", "down_revision") and value is not None:
            found[name] = ast.literal_eval(value)
    return found


@cache
def head_revision(versions: Path = VERSIONS_DIR) -> str:
    """The one revision no other migration revises. Raises RuntimeError unless there is
    exactly one (a branched history needs `alembic merge`, which this project does not use)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in sorted(versions.glob("*.py")):
        found = _assignments(path)
        revision = found.get("revision")
        if not isinstance(revision, str):
            continue
        revisions.add(revision)
        down = found.get("down_revision")
        if isinstance(down, str):
            revised.add(down)
        elif isinstance(down, tuple | list):
            revised.update(str(d) for d in down)
    heads = revisions - revised
    if len(heads) != 1:
        raise RuntimeError(f"expected one migration head in {versions}, found {sorted(heads)}")
    return heads.pop()


def _current(connection: Connection) -> str | None:
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise RuntimeError(f"{VERSION_TABLE} holds several revisions: {sorted(rows)}")
    return rows[0] if rows else None


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None before the first migration)."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)
