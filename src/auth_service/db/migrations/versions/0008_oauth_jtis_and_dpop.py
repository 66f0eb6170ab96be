"""One-time JWTs seen: client assertions (private_key_jwt) and DPoP proofs, by the digest
of their jti, until they expire (replay protection shared by every worker); and the DPoP
key a public client's grant is bound to (RFC 9449).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauth_used_jtis",
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_oauth_used_jtis_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_oauth_used_jtis")),
    )
    with op.batch_alter_table("oauth_used_jtis", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_used_jtis_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_oauth_used_jtis_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "oauth_dpop_bindings",
        sa.Column("grant_id", sa.Uuid(), nullable=False),
        sa.Column("jkt", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["sessions.id"],
            name=op.f("fk_oauth_dpop_bindings_grant_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_oauth_dpop_bindings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("grant_id", name=op.f("pk_oauth_dpop_bindings")),
    )
    with op.batch_alter_table("oauth_dpop_bindings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_dpop_bindings_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_dpop_bindings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_dpop_bindings_tenant_id"))
    op.drop_table("oauth_dpop_bindings")
    with op.batch_alter_table("oauth_used_jtis", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_used_jtis_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_used_jtis_expires_at"))
    op.drop_table("oauth_used_jtis")
