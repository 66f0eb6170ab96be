"""Self-service account deletion with a grace period: when the account's personal data is
due to be erased (NULL: no deletion asked for). Housekeeping erases accounts past it.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-05 21:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("deletion_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(batch.f("ix_users_deletion_due_at"), ["deletion_due_at"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_index(batch.f("ix_users_deletion_due_at"))
        batch.drop_column("deletion_due_at")
