"""Engine and session factory for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import ClauseElement, Delete, Insert, Update, event, literal_column, select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
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
from auth_service.db.errors import connection_lost, unavailable
from auth_service.observability import metrics, tracing
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


# Server errors after which the connection is gone (terminated, shut down): dropped like a cut.
_CONNECTION_GONE = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)


class DriverStatement:
    """A Core statement compiled ONCE for asyncpg, to run on the driver's connection itself
    (``Database.fetch_driver``): its SQL text, its parameters in order and their bind
    processors (``UTCDateTime`` and the like, as SQLAlchemy would apply them).

    For a hot statement only (the refresh exchange): SQLAlchemy's execution context, result
    processing and greenlet hop cost more CPU than the statement's own round trip (about
    0.3 ms of 0.7 ms per execution measured here, bench/results/2026-12-05-refresh). Result
    values come as asyncpg decodes them: ``json`` columns as text (SQLAlchemy's codec on
    its connections), timestamps aware UTC, UUIDs as asyncpg's ``uuid.UUID`` subclass."""

    def __init__(self, statement: ClauseElement) -> None:
        compiled: Any = statement.compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        processors: Mapping[str, Any] = compiled._bind_processors
        self.processors = tuple(processors.get(name) for name in self.names)
        self.keys = tuple(column[0] for column in compiled._result_columns)

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        return [
            value if process is None or value is None else process(value)
            for process, value in zip(
                self.processors, (params[name] for name in self.names), strict=True
            )
        ]


class DriverRow:
    """One asyncpg record with attribute access, like a SQLAlchemy ``Row``."""

    __slots__ = ("_record",)

    def __init__(self, record: Any) -> None:
        self._record = record

    def __getattr__(self, key: str) -> Any:
        try:
            return self._record[key]
        except KeyError:
            raise AttributeError(key) from None


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
        self._spans = tracing.statement_spans(engine.sync_engine)
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

    async def fetch_driver(
        self, statement: DriverStatement, params: Mapping[str, Any]
    ) -> Sequence[DriverRow]:
        """Run ``statement`` on PostgreSQL as ``single`` does (autocommit, one round trip,
        outages as DatabaseUnavailable), on asyncpg's connection directly: no SQLAlchemy
        execution or result processing. Timed and traced like every other statement
        (``observability.db``). A connection that failed other than with an SQL error
        (cancelled, cut) is invalidated, as SQLAlchemy would, so the pool never reuses it."""
        assert self.backend is Backend.postgresql
        arguments = statement.arguments(params)
        async with self.single() as conn:
            raw: Any = (await conn.get_raw_connection()).driver_connection
            span = self._spans.start(statement.sql) if self._spans is not None else None
            start = time.perf_counter()
            try:
                records = await raw.fetch(statement.sql, *arguments)
            except BaseException as exc:
                if span is not None:
                    tracing.StatementSpans.fail(span, exc)
                closed = raw.is_closed()
                sql_error = isinstance(exc, asyncpg.PostgresError)
                if closed or not sql_error or isinstance(exc, _CONNECTION_GONE):
                    with contextlib.suppress(Exception):
                        await conn.invalidate()
                if closed and isinstance(exc, Exception):
                    # Whatever asyncpg raised on a connection that is now closed, SQLAlchemy
                    # calls it a disconnect (is_disconnect): so do we, a 503 and no 500.
                    raise unavailable(exc) or connection_lost(exc) from exc
                raise
            finally:
                metrics.DB_QUERY_DURATION.observe(time.perf_counter() - start)
            if span is not None:
                span.end()
        return [DriverRow(r) for r in records]

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

    async def warm(self, *, seconds_each: float = 5.0) -> int:
        """Open the pool's kept connections now, all at once (PostgreSQL; SQLite has no pool
        to fill): a served worker does this before its first request, so the first burst of
        traffic does not wait for connections opened one checkout at a time (bench:
        ``me_again``, ``me_fresh``). Returns how many it opened: fewer, or none, when the
        database is slow or cannot be reached (readiness says so; requests then open
        connections as usual). Each attempt gives up after ``seconds_each``."""
        if self.backend is not Backend.postgresql:
            return 0

        async def one() -> AsyncConnection:
            async with asyncio.timeout(seconds_each):
                return await self.engine.connect().start()

        size = self.engine.pool.size()  # type: ignore[attr-defined]
        opened = await asyncio.gather(*(one() for _ in range(size)), return_exceptions=True)
        conns = [c for c in opened if isinstance(c, AsyncConnection)]
        for conn in conns:
            await conn.close()  # back to the pool, which keeps up to its size
        return len(conns)

    async def dispose(self) -> None:
        await self.engine.dispose()
