"""One-time tokens may have no user: decoys that make "no account" cost what an account does.

Forgot-password, registration and verification resend write a token row whether or not an
account exists (ADR 0011); where none does, the row has no user and can never be spent. The
index on user_id becomes (user_id, expires_at): the expired decoys are one index range, so
dropping them never scans the live ones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("one_time_tokens", schema=None) as batch_op:
        batch_op.alter_column("user_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.drop_index("ix_one_time_tokens_user_id")
        batch_op.create_index(
            "ix_one_time_tokens_user_id_expires_at", ["user_id", "expires_at"], unique=False
        )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM one_time_tokens WHERE user_id IS NULL"))
    with op.batch_alter_table("one_time_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_one_time_tokens_user_id_expires_at")
        batch_op.create_index("ix_one_time_tokens_user_id", ["user_id"], unique=False)
        batch_op.alter_column("user_id", existing_type=sa.Uuid(), nullable=False)
