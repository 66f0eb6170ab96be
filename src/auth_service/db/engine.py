"""Engine and session factory for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Delete, Insert, Update, event, literal_column, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from auth_service.config.settings import Settings
from auth_service.config.tls import PostgresSslMode
from auth_service.db.errors import unavailable
from auth_service.observability.db import instrument_engine


class Backend(StrEnum):
    """The database engines the service runs on."""

    sqlite = "sqlite"
    postgresql = "postgresql"


def backend_of(url: str | URL) -> Backend:
    """Which engine a database URL (any driver: ``postgresql+asyncpg``, plain ``postgresql``,
    ``sqlite+aiosqlite``) points at; ValueError for any other."""
    try:
        name = make_url(url).get_backend_name()
    except ArgumentError:
        raise ValueError("the database URL is not a URL (dialect+driver://...)") from None
    try:
        return Backend(name)
    except ValueError:
        raise ValueError(
            f"unsupported database backend {name!r}: use sqlite+aiosqlite or postgresql+asyncpg"
        ) from None


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite URL; None for an in-memory database or for PostgreSQL."""
    if backend_of(url) is not Backend.sqlite:
        return None
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def postgres_ssl(mode: PostgresSslMode, root_cert: Path | None) -> str | ssl.SSLContext:
    """asyncpg's ``ssl`` argument for libpq's sslmode (ADR 0311): the mode's name, or for
    the verify modes a context trusting ``root_cert`` alone (never the system store, as
    libpq), checking the host name under verify-full. A context makes TLS mandatory."""
    if mode not in (PostgresSslMode.verify_ca, PostgresSslMode.verify_full):
        return mode.value
    context = ssl.create_default_context(cafile=root_cert)
    context.check_hostname = mode is PostgresSslMode.verify_full
    return context


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    backend = backend_of(url)
    # hide_parameters: statement parameters (emails, token digests) never reach error messages.
    kwargs: dict[str, Any] = {
        "echo": settings.database.echo,
        "pool_pre_ping": False,
        "hide_parameters": True,
    }
    if backend is Backend.sqlite:
        path = sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine)
        instrument_engine(engine)
        return engine
    kwargs.update(
        pool_size=settings.database.pool_size,
        max_overflow=settings.database.max_overflow,
        pool_timeout=settings.database.pool_timeout_seconds,
        pool_recycle=1800,
    )
    timeout = settings.database.statement_timeout_ms
    kwargs["connect_args"] = {
        "server_settings": {
            "application_name": "auth-service",
            "statement_timeout": str(timeout),
        },
        "command_timeout": max(timeout / 1000 * 2, 5) if timeout else None,
        "ssl": postgres_ssl(settings.database.ssl_mode, settings.database.ssl_root_cert),
    }
    engine = create_async_engine(url, **kwargs)
    instrument_engine(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    # SQLite upgrades a read transaction to a write lock lazily and fails with "database is
    # locked" instead of waiting when two connections race. Taking the write lock up front
    # (BEGIN IMMEDIATE) makes writers queue on busy_timeout, so concurrent requests serialise
    # instead of failing. See the SQLAlchemy "pysqlite serializable" recipe.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@asynccontextmanager
async def _outages_translated() -> AsyncIterator[None]:
    # An outage surfaces wherever the driver notices it: connecting, a statement, COMMIT or
    # the ROLLBACK after another error. Whichever it is, callers see DatabaseUnavailable.
    try:
        yield
    except Exception as exc:
        outage = unavailable(exc)
        if outage is None or outage is exc:
            raise
        raise outage from exc


class Database:
    """Owns the engine; hands out sessions and transactions.

    ``session``, ``transaction``, ``single`` and ``write_together`` raise
    ``DatabaseUnavailable`` (a 503 problem) when the database cannot serve (db.errors); every
    other error passes unchanged. Use them rather than ``engine`` or ``sessionmaker``.

    Inside ``atomic`` they all join the one transaction ``atomic`` holds (ADR 0930).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.backend = backend_of(engine.url)
        self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        # The connection of the enclosing ``atomic`` block of this task, if any.
        self._atomic: ContextVar[AsyncConnection | None] = ContextVar(
            f"atomic-{id(self)}", default=None
        )
        self._after_commit: ContextVar[list[Callable[[], None]] | None] = ContextVar(
            f"after-commit-{id(self)}", default=None
        )

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once what was just written is committed: now, or inside
        ``atomic`` when the block commits (never when it rolls back). Logging an audit
        event is one: a log line must not tell of a change the database undid."""
        pending = self._after_commit.get()
        if pending is None:
            callback()
        else:
            pending.append(callback)

    @asynccontextmanager
    async def atomic(self, *, commit: bool = True) -> AsyncIterator[AsyncConnection]:
        """ONE transaction for everything this task does with this Database inside the block.

        ``session``, ``transaction``, ``single`` and ``write_together`` called by any service
        inside the block run on the block's connection, each in a savepoint of its own, so the
        services' own operations (and their audit events) compose into one unit: committed
        when the block ends (rolled back instead with ``commit=False``: a dry run), rolled
        back entirely when it raises. Not re-entrant; not for concurrent tasks.
        """
        if self._atomic.get() is not None:
            raise RuntimeError("Database.atomic blocks do not nest")
        async with _outages_translated(), self.engine.connect() as conn:
            await conn.begin()
            pending: list[Callable[[], None]] = []
            token = self._atomic.set(conn)
            callbacks = self._after_commit.set(pending)
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            finally:
                self._atomic.reset(token)
                self._after_commit.reset(callbacks)
            if not commit:
                await conn.rollback()
                return
            await conn.commit()
            for callback in pending:
                callback()

    def _joined_session(self, conn: AsyncConnection) -> AsyncSession:
        return self.sessionmaker(bind=conn, join_transaction_mode="create_savepoint")

    def replace_engine(self, engine: AsyncEngine) -> AsyncEngine:
        """Point every holder of this Database at ``engine``; return the old engine.

        Services keep a reference to this object, never to the engine, so the swap is one
        attribute assignment each: new sessions use the new engine from the next call.
        """
        old = self.engine
        self.engine = engine
        self.backend = backend_of(engine.url)
        self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        return old

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for several reads (it begins a transaction on first use and rolls it
        back at the end); writes belong in ``transaction``."""
        joined = self._atomic.get()
        if joined is not None:
            async with self._joined_session(joined) as session:
                yield session
            return
        async with _outages_translated(), self.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        joined = self._atomic.get()
        if joined is not None:
            async with self._joined_session(joined) as session, session.begin():
                yield session
            return
        async with _outages_translated(), self.sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def single(self) -> AsyncIterator[AsyncConnection]:
        """A connection for ONE statement (a read, or a write that is atomic on its own).

        On PostgreSQL it runs in autocommit: no BEGIN and COMMIT/ROLLBACK messages around the
        statement, one network round trip instead of three. SQLite keeps its usual transaction
        (its writers must queue on BEGIN IMMEDIATE, see _configure_sqlite).
        """
        joined = self._atomic.get()
        if joined is not None:
            async with joined.begin_nested():
                yield joined
            return
        async with _outages_translated():
            if self.backend is Backend.postgresql:
                async with self._autocommit.connect() as conn:
                    yield conn
            else:
                async with self.engine.begin() as conn:
                    yield conn

    async def write_together(self, *statements: Insert | Update | Delete) -> None:
        """Run independent writes atomically, in one round trip on PostgreSQL.

        On PostgreSQL the statements become the data-modifying CTEs of ONE statement run in
        autocommit (``WITH w0 AS (UPDATE ...), w1 AS (INSERT ...) SELECT 1``): all or none,
        one network round trip. Every sub-statement sees the same snapshot and none sees the
        others' rows, so they must not depend on each other's effects; foreign keys between
        them are checked at the end of the statement and hold. SQLAlchemy applies no Python
        column defaults or ``onupdate`` inside a CTE: every statement must set its values
        explicitly. SQLite has no DML in CTEs: the statements run in order inside one
        transaction.
        """
        joined = self._atomic.get()
        if joined is not None:
            async with joined.begin_nested():
                for stmt in statements:
                    await joined.execute(stmt)
            return
        async with _outages_translated():
            if self.backend is Backend.postgresql:
                ctes = [stmt.cte(f"w{i}") for i, stmt in enumerate(statements)]
                async with self._autocommit.connect() as conn:
                    await conn.execute(select(literal_column("1")).add_cte(*ctes))
                return
            async with self.engine.begin() as conn:
                for stmt in statements:
                    await conn.execute(stmt)

    async def dispose(self) -> None:
        await self.engine.dispose()
