"""A database that cannot serve is one expected failure: ``DatabaseUnavailable``.

PostgreSQL stopped or restarting, a connection cut mid-statement, a pool with no free
connection, a standby that refuses writes after a failover, a SQLite file on a full or failing
disk: the drivers raise a dozen exception types for these, none of them a bug in the request.
``unavailable`` recognises them in one place, so every face answers them alike (the API with
503 ``database-unavailable`` and ``Retry-After``, the CLI with one line) and the logs get one
warning instead of a traceback. Anything else (a constraint, a syntax error, a missing table)
is a bug and stays what it is.
"""

from __future__ import annotations

import sqlite3
import ssl
from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy import exc as sa_exc

from auth_service.problems import ServiceError, problem

log = structlog.get_logger(__name__)

# Long enough for a restart or a failover to finish, short enough that a client retrying after
# a blip does not wait for nothing; readiness notices within one check interval (5 s).
RETRY_AFTER_SECONDS = 5


@problem(503, "database-unavailable", "The database is unavailable; retry shortly")
class DatabaseUnavailable(ServiceError):
    """The database cannot be reached or cannot write (stopped, restarting, connection lost,
    no free connection in the pool, read-only after a failover, disk full); `Retry-After` is
    set. The write that failed stored nothing, so the request can be retried as it is."""

    retry_after_seconds = RETRY_AFTER_SECONDS

    def __init__(self, reason: str) -> None:
        # The reason names the driver's error for logs and the CLI; never sent to clients.
        super().__init__(reason)
        self.reason = reason


# PostgreSQL conditions that say the server cannot serve now, not that the request is wrong:
# class 08 (connection exceptions), 57 (operator intervention: shutdown, restart, cancelled
# by statement_timeout), 53 (insufficient resources: disk full, too many connections) and
# 25006 (a read-only transaction: the server is a standby).
_POSTGRES_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,
)

# SQLite primary result codes (https://sqlite.org/rescode.html) for the same: BUSY and LOCKED
# (busy_timeout ran out), NOMEM, READONLY, IOERR, FULL, CANTOPEN. Python's sqlite3 raises
# OperationalError for these but also for syntax errors and missing tables, hence the codes.
_SQLITE_UNAVAILABLE = frozenset({5, 6, 7, 8, 10, 13, 14})


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error SQLAlchemy wrapped (``orig``), and their causes."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen or len(seen) > 8:
            continue
        seen.add(id(current))
        yield current
        # Not __context__: an unrelated error being handled when this one was raised.
        pending += [getattr(current, "orig", None), current.__cause__]


def _reason(exc: BaseException) -> str | None:
    """Why ``exc`` means the database cannot serve now; None when it means something else."""
    if isinstance(exc, sa_exc.TimeoutError):
        return "no free connection in the pool"
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return "connection lost"
    if isinstance(exc, _POSTGRES_UNAVAILABLE):
        return type(exc).__name__
    if isinstance(exc, asyncpg.exceptions.InterfaceError) and "connection is closed" in str(exc):
        return "connection closed"
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _SQLITE_UNAVAILABLE:
            return str(getattr(exc, "sqlite_errorname", "SQLITE_ERROR"))
    if isinstance(exc, ssl.SSLCertVerificationError):
        # database.ssl_mode verify-ca/-full: a wrong CA or host name. Says which, as the CLI
        # and the logs show the reason (never the client).
        return f"TLS certificate of the database refused: {exc.verify_message}"
    if isinstance(exc, OSError | TimeoutError):
        # Connecting: refused, reset, unreachable, name not resolved, or timed out.
        return type(exc).__name__
    return None


def unavailable(exc: BaseException) -> DatabaseUnavailable | None:
    """``exc`` as a DatabaseUnavailable when it says the database cannot serve now (its
    reason logged once as a warning, without a traceback); None for any other error."""
    if isinstance(exc, DatabaseUnavailable):
        return exc
    for cause in _causes(exc):
        reason = _reason(cause)
        if reason is not None:
            log.warning("database_unavailable", reason=reason, error=type(exc).__name__)
            return DatabaseUnavailable(reason)
    return None


def connection_lost(exc: BaseException) -> DatabaseUnavailable:
    """``exc``, raised on a connection the driver has closed since, as the outage it is (what
    SQLAlchemy's ``is_disconnect`` decides for statements it runs itself); logged once."""
    log.warning("database_unavailable", reason="connection lost", error=type(exc).__name__)
    return DatabaseUnavailable("connection lost")
