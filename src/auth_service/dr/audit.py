"""Audit events of failovers and failbacks, manual (`dr failover`, `dr failback`) or automatic
(`dr watch`).

They are stored in the database that is the primary once the operation is done: the old one
is gone, or fenced read-only. Details name nodes by host:port, never by URL (URLs carry
passwords).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auth_service.audit.context import RequestContext

if TYPE_CHECKING:
    from auth_service.config.settings import Settings

CLI = RequestContext(request_id="cli", user_agent="auth-service cli")
"""The actor of `dr failover` / `dr failback`: an operator at the command line."""

WATCH = RequestContext(request_id="dr-watch", user_agent="auth-service dr watch")
"""The actor of an automatic failover: a `dr watch` observer (named in the details)."""


async def record_dr_event(
    settings: Settings,
    primary_url: str,
    event_type: str,
    ctx: RequestContext,
    details: dict[str, Any],
) -> None:
    """Store and log one audit event in the database at ``primary_url`` (the new primary).

    ``settings`` supply everything but the URL (pool, TLS, logging of the event). Raises what
    the database raises: the caller decides whether a failed record hides the operation.
    """
    # Imported here: every CLI command imports the dr package, few of them record an event.
    from auth_service.audit.service import AuditService
    from auth_service.backup.verify import with_database_url
    from auth_service.db.engine import Database, create_engine

    db = Database(create_engine(with_database_url(settings, primary_url)))
    try:
        await AuditService(db).record(event_type, ctx, details=details)
    finally:
        await db.dispose()
