"""Alembic environment: runs on the connection handed in by ``auth_service.db.migrate``."""

from __future__ import annotations

from alembic import context

from auth_service.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable when alembic is run by hand
    raise RuntimeError("run migrations with `auth-service migrate`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
