"""An index on sessions.browser_session_id: every browser session that ends now looks up the
grants made in it (their clients get back-channel logout tokens, those without a refresh
token end with it), on every path that ends sessions (ADR 0750).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 01:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sessions_browser_session_id"), ["browser_session_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_browser_session_id"))
