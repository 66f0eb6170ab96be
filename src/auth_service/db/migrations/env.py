"""Alembic environment: runs on the connection handed in by ``auth_service.db.migrate``.

Running migrations needs no models (each revision states its own operations).
``target_metadata`` is only for comparing models with the database (autogenerate, the drift
test): the caller passes ``auth_service.schema.metadata``, so ``db`` imports no domain.
"""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable when alembic is run by hand
    raise RuntimeError("run migrations with `auth-service migrate`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=config.attributes.get("target_metadata"),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
