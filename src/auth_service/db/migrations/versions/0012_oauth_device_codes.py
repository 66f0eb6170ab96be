"""OAuth device authorization grant (RFC 8628): oauth_device_codes, the device and user
codes as SHA-256 with the request they answer and the user's decision.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "oauth_device_codes"


def _fk(column: str, target: str) -> sa.ForeignKeyConstraint:
    table, _ = target.split(".")
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{TABLE}_{column}_{table}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("device_code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("user_code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("client_pk", sa.Uuid(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("grant_id", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        _fk("client_pk", "oauth_clients.id"),
        _fk("tenant_id", "tenants.id"),
        _fk("user_id", "users.id"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
        sa.UniqueConstraint("device_code_hash", name=op.f(f"uq_{TABLE}_device_code_hash")),
        sa.UniqueConstraint("user_code_hash", name=op.f(f"uq_{TABLE}_user_code_hash")),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        for column in ("client_pk", "expires_at", "tenant_id", "user_id"):
            batch_op.create_index(batch_op.f(f"ix_{TABLE}_{column}"), [column], unique=False)


def downgrade() -> None:
    op.drop_table(TABLE)
