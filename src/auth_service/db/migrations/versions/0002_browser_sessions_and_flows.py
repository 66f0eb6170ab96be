"""Browser sessions beside API sessions, server-side flows, the user's language.

- sessions.kind: "api" (refresh tokens) or "browser" (a cookie); sessions.token_hash: the
  SHA-256 of a browser session's cookie; auth_time, amr and acr: how and when the user last
  authenticated in this session (OIDC max_age, step-up).
- flows: a sign-in (or consent) in progress that must outlive one request.
- users.locale: the language of the pages and emails the user last chose.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="api")
        )
        batch_op.add_column(sa.Column("token_hash", sa.LargeBinary(length=32), nullable=True))
        batch_op.add_column(sa.Column("auth_time", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("amr", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("acr", sa.String(length=16), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_sessions_token_hash"), ["token_hash"])
    op.execute("UPDATE sessions SET auth_time = created_at")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.alter_column("auth_time", existing_type=sa.DateTime(timezone=True), nullable=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=16), nullable=True))

    op.create_table(
        "flows",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("binding_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_flows_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_flows_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flows")),
    )
    with op.batch_alter_table("flows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flows_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_flows_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("flows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flows_expires_at"))
        batch_op.drop_index(batch_op.f("ix_flows_tenant_id"))
    op.drop_table("flows")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("locale")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_sessions_token_hash"), type_="unique")
        batch_op.drop_column("acr")
        batch_op.drop_column("amr")
        batch_op.drop_column("auth_time")
        batch_op.drop_column("token_hash")
        batch_op.drop_column("kind")
