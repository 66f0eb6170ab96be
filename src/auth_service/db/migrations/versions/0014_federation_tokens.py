"""Federation: the upstream tokens of a linked identity, kept only when its connector asks
(sealed under the master key), and when they were last replaced.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("federated_identities") as batch:
        batch.add_column(sa.Column("tokens_sealed", sa.LargeBinary(length=16384), nullable=True))
        batch.add_column(sa.Column("tokens_updated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("federated_identities") as batch:
        batch.drop_column("tokens_updated_at")
        batch.drop_column("tokens_sealed")
