"""Fold stored emails to the new normal form: NFKC and case folding of the local part.

Until now local parts were NFC and lower-cased only, so ``ada@example.com`` typed with a
full-width "a" (U+FF41) was an account distinct from ``ada@example.com`` (ADR 0012). Rows
whose normal form changes are rewritten. Two accounts of a tenant whose emails fold to the
same address are never merged silently: the upgrade stops, changes nothing, names them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 18:30:00
"""

import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from auth_service.db.migrate import MigrationRefused

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

users = sa.table(
    "users",
    sa.column("id", sa.Uuid()),
    sa.column("tenant_id", sa.Uuid()),
    sa.column("email", sa.String(320)),
)

# Rows read and keys looked up per statement.
BATCH = 1000


def fold_local_part(email: str) -> str:
    """The normal form of a stored email as of this revision (a frozen copy of
    ``accounts.emails.fold`` applied to the local part: a migration must not change with the
    application code). Stored domains are already in their IDNA normal form."""
    local, _, domain = email.rpartition("@")
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", local).casefold())
    return f"{folded}@{domain}"


Key = tuple[uuid.UUID, str]  # (tenant, email)


def _changes(conn: sa.Connection) -> dict[Key, list[tuple[uuid.UUID, str]]]:
    """Folded key -> the accounts whose email changes to it (id, stored email)."""
    changed: dict[Key, list[tuple[uuid.UUID, str]]] = defaultdict(list)
    # Pages by id, not a server-side cursor (yield_per): on PostgreSQL a cursor still open in
    # the migrations' one transaction makes any later ALTER TABLE users fail ("being used by
    # active queries in this session").
    last: uuid.UUID | None = None
    while True:
        page = sa.select(users.c.id, users.c.tenant_id, users.c.email).order_by(users.c.id)
        if last is not None:
            page = page.where(users.c.id > last)
        rows = conn.execute(page.limit(BATCH)).all()
        for user_id, tenant_id, email in rows:
            folded = fold_local_part(email)
            if folded != email:
                changed[(tenant_id, folded)].append((user_id, email))
        if len(rows) < BATCH:
            return changed
        last = rows[-1][0]


def _holders(conn: sa.Connection, keys: list[Key]) -> dict[Key, list[tuple[uuid.UUID, str]]]:
    """Accounts that already hold one of ``keys`` as their email (they do not change:
    a folded address folds to itself)."""
    held: dict[Key, list[tuple[uuid.UUID, str]]] = defaultdict(list)
    wanted = set(keys)
    emails = sorted({email for _, email in keys})
    for start in range(0, len(emails), BATCH):
        rows = conn.execute(
            sa.select(users.c.id, users.c.tenant_id, users.c.email).where(
                users.c.email.in_(emails[start : start + BATCH])
            )
        )
        for user_id, tenant_id, email in rows:
            if (tenant_id, email) in wanted:
                held[(tenant_id, email)].append((user_id, email))
    return held


def upgrade() -> None:
    conn = op.get_bind()
    changed = _changes(conn)
    if not changed:
        return
    held = _holders(conn, list(changed))
    collisions = []
    for key, accounts in sorted(changed.items(), key=lambda item: str(item[0])):
        group = held.get(key, []) + accounts
        if len(group) > 1:
            named = ", ".join(f"{email!r} (id {user_id})" for user_id, email in group)
            collisions.append(f"tenant {key[0]}: {named} all become {key[1]!r}")
    if collisions:
        raise MigrationRefused(
            "emails that differ only by width, case folding or compatibility forms now name "
            "one account, and these accounts would become one: "
            + "; ".join(collisions)
            + ". Nothing was changed. Keep one account of each group (change the email of "
            "the others, or delete them), then run `auth-service migrate` again."
        )
    for (_, folded), accounts in changed.items():
        for user_id, _ in accounts:
            conn.execute(users.update().where(users.c.id == user_id).values(email=folded))


def downgrade() -> None:
    # Folded addresses are valid addresses of the older form too: nothing to undo.
    pass
