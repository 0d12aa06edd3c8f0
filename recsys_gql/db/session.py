"""The async engine, session factory and the write-transaction discipline.

Reads use ordinary sessions from :func:`session_factory`. **Every write goes through**
:func:`write_session` (or :func:`write_connection` for Core/DDL work); the repository's write
functions refuse a session that did not come from it. The one exception: on a SQLite file,
:class:`~recsys_gql.db.rating_writer.RatingWriter` first offers each batch of ratings to
:class:`~recsys_gql.db.inline_writes.SqliteInlineWrites`, which commits it on the event loop
with its own ``BEGIN IMMEDIATE`` only if the write lock is free at that instant (it never
waits), and otherwise hands it back for :func:`write_connection`.

SQLite write safety
-------------------
SQLite allows one writer at a time per database file. With many concurrent writers in one
process the usual failure is ``database is locked``: a *deferred* transaction reads, then tries
to upgrade to a write lock while another connection holds it, and SQLite answers ``SQLITE_BUSY``
at once — the busy timeout cannot help, because waiting could deadlock. Two layers prevent it:

1. **An asyncio.Lock per engine** (and event loop) serialises write transactions inside the
   process. A writer takes the lock *before* checking out a connection, so waiting writers hold
   no pooled connection and no SQLite lock, and they are served in FIFO order — the order in
   which their commits are acknowledged. Readers never take it; in WAL mode they do not block
   the writer and the writer does not block them.
2. **BEGIN IMMEDIATE** for write transactions (plain deferred ``BEGIN`` for reads). The write
   lock is taken when the transaction starts, never by an upgrade, so a writer from *another*
   process or engine on the same file (``recsys-gql db init`` while the server runs, a second
   worker) simply waits in SQLite's busy handler, up to ``busy_timeout`` (30 s), instead of
   failing.

Every SQLite connection gets ``journal_mode=WAL``, ``busy_timeout=30000``,
``synchronous=NORMAL`` (durable at checkpoints, safe against corruption in WAL mode) and
``foreign_keys=ON``. The pysqlite driver's own implicit ``BEGIN`` handling is switched off
(``isolation_level = None``) and SQLAlchemy's ``begin`` event emits ``BEGIN`` or
``BEGIN IMMEDIATE`` instead, as the SQLAlchemy documentation recommends.

An engine belongs to one event loop (as SQLAlchemy's async pool already requires); a lock is
created per (engine, loop) so tests that run each case in a fresh loop stay correct.

PostgreSQL
----------
``postgresql+asyncpg://…`` gets a normal connection pool that hands out only live connections
(:func:`_install_postgres_liveness`). Row-level
locking makes concurrent upserts safe there, so :func:`write_session` is just a session in a
transaction (no process lock).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from recsys_gql.db.hot_reads import HotReads, hot_reads_for, sqlite_file
from recsys_gql.db.inline_writes import SqliteInlineWrites
from recsys_gql.db.urls import is_sqlite_memory, sqlite_file_path

__all__ = [
    "BUSY_TIMEOUT_MS",
    "AsyncSession",
    "Database",
    "create_db_engine",
    "is_sqlite",
    "is_write_session",
    "session_factory",
    "write_connection",
    "write_session",
]

BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite connection waits for another connection's write lock before failing."""

_BEGIN_OPTION = "recsys_sqlite_begin"
"""Execution option read by the ``begin`` listener: ``"DEFERRED"`` (default) or
``"IMMEDIATE"``."""
_BEGIN_MODES = frozenset({"DEFERRED", "IMMEDIATE"})
_WRITE_FLAG = "recsys_write_session"
"""``Session.info`` key marking a session opened by :func:`write_session`."""

_LOCKS: WeakKeyDictionary[Engine, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    WeakKeyDictionary()
)


def _prepare_sqlite_file(url: URL) -> None:
    """Create the folder of a SQLite database file if it does not exist yet."""
    path = sqlite_file_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _install_sqlite_listeners(engine: AsyncEngine, *, memory: bool) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver; the "begin" listener emits BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL may itself have to wait for a lock.
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        if mode not in _BEGIN_MODES:
            raise ValueError(f"unknown SQLite BEGIN mode {mode!r}")
        connection.exec_driver_sql(f"BEGIN {mode}")


POOL_SIZE = 10
"""PostgreSQL connections each process keeps open (``RECSYS_GQL_DATABASE_POOL_SIZE``)."""
MAX_OVERFLOW = 20
"""Connections a process may open beyond :data:`POOL_SIZE` in a burst; they are closed when
returned to a full pool (``RECSYS_GQL_DATABASE_MAX_OVERFLOW``)."""


def create_db_engine(
    url: str | URL,
    *,
    pool_size: int = POOL_SIZE,
    max_overflow: int = MAX_OVERFLOW,
    **engine_options: Any,
) -> AsyncEngine:
    """Create the async engine for ``url`` (``sqlite+aiosqlite://`` or
    ``postgresql+asyncpg://``).

    SQLite: creates the database file's folder, installs the per-connection pragmas and the
    BEGIN/BEGIN IMMEDIATE handling described in this module's docstring. PostgreSQL: a pooled
    engine that checks a connection is alive as it is checked out (without a round trip: see
    :func:`_install_postgres_liveness`), keeping ``pool_size`` connections and opening up to
    ``max_overflow`` more in a burst. SQLAlchemy's default of 5 was too few for one busy
    process: every request past the fifth opened and closed a connection of its own (a TCP
    and TLS handshake, then authentication), most of the CPU of a ``rateMovie`` under 16
    concurrent writers. ``engine_options`` are passed to
    :func:`sqlalchemy.ext.asyncio.create_async_engine` (e.g. ``echo=True`` or
    ``connect_args={"server_settings": {"search_path": "…"}}`` for asyncpg).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        _prepare_sqlite_file(parsed)
        engine = create_async_engine(parsed, **engine_options)
        _install_sqlite_listeners(engine, memory=is_sqlite_memory(parsed))
        return engine
    if backend == "postgresql":
        options: dict[str, Any] = {"pool_size": pool_size, "max_overflow": max_overflow}
        options.update(engine_options)
        engine = create_async_engine(parsed, **options)
        if not options.get("pool_pre_ping"):
            _install_postgres_liveness(engine)
        return engine
    raise ValueError(
        f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
        "use sqlite+aiosqlite:///path or postgresql+asyncpg://…"
    )


def _install_postgres_liveness(engine: AsyncEngine) -> None:
    """Hand out only pooled asyncpg connections that are still open.

    SQLAlchemy's ``pool_pre_ping`` sends a statement to the server on every checkout: one
    more round trip on every request (a token lookup became two). asyncpg instead learns
    that the server closed a connection (a restart, ``pg_terminate_backend``, an idle
    timeout) as soon as the event loop reads the close from its socket, and then reports
    ``is_closed()``; a closed connection raises ``DisconnectionError`` here, which makes the
    pool discard it and check out another (SQLAlchemy's documented pessimistic handling).
    A connection that dies while in use fails its statement, and SQLAlchemy then
    invalidates the whole pool, as with ``pool_pre_ping``."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _alive(_dbapi: Any, record: Any, _proxy: Any) -> None:
        driver = record.driver_connection
        if driver is None or driver.is_closed():
            raise DisconnectionError("the PostgreSQL server closed this pooled connection")


def is_sqlite(engine: AsyncEngine) -> bool:
    """Whether ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A factory of SQLModel ``AsyncSession`` bound to ``engine``.

    ``expire_on_commit=False`` so objects stay readable after a commit without a lazy load
    (which async code cannot do implicitly).
    """
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def _write_lock(engine: AsyncEngine) -> asyncio.Lock:
    """The lock serialising SQLite write transactions of ``engine`` in the running loop."""
    loop = asyncio.get_running_loop()
    entry = _LOCKS.get(engine.sync_engine)
    if entry is None or entry[0] is not loop:
        entry = (loop, asyncio.Lock())
        _LOCKS[engine.sync_engine] = entry
    return entry[1]


def _serialised(engine: AsyncEngine) -> AbstractAsyncContextManager[Any]:
    return _write_lock(engine) if is_sqlite(engine) else nullcontext()


def _write_options(engine: AsyncEngine) -> dict[str, Any]:
    return {_BEGIN_OPTION: "IMMEDIATE"} if is_sqlite(engine) else {}


def _resolve(
    target: AsyncEngine | async_sessionmaker[AsyncSession],
) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    if isinstance(target, AsyncEngine):
        return target, session_factory(target)
    bind = target.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        raise TypeError("write_session needs a session factory bound to an AsyncEngine")
    return bind, target


@asynccontextmanager
async def write_session(
    target: AsyncEngine | async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session inside one write transaction: committed when the block exits normally, rolled
    back when it raises. Use it for every write, and keep the block short (no slow work inside:
    on SQLite it holds the database's only write slot).

    ``target`` is the engine or a factory from :func:`session_factory`. When the block has
    exited without an exception the write is durable and visible to every new transaction.

    Do not nest write sessions in one task: on SQLite the inner one would wait for the lock the
    outer one holds. A task cancelled mid-commit releases the lock; the commit finishes in the
    driver thread and the next writer waits for it in SQLite's busy handler.
    """
    engine, factory = _resolve(target)
    async with (
        _serialised(engine),
        factory(execution_options=_write_options(engine)) as session,
    ):
        session.info[_WRITE_FLAG] = True
        async with session.begin():
            yield session


@asynccontextmanager
async def write_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Like :func:`write_session` for Core statements and DDL: a connection in one write
    transaction (``BEGIN IMMEDIATE`` and the process lock on SQLite)."""
    async with _serialised(engine), engine.connect() as connection:
        await connection.execution_options(**_write_options(engine))
        connection.info[_WRITE_FLAG] = True
        async with connection.begin():
            yield connection


def is_write_session(session: AsyncSession | AsyncConnection) -> bool:
    """Whether ``session`` was opened by :func:`write_session` (or the connection by
    :func:`write_connection`)."""
    return bool(session.info.get(_WRITE_FLAG, False))


@dataclass(frozen=True)
class Database:
    """The engine and its session factory, opened once per process (e.g. in the app lifespan).

    ``sessions()`` opens a read session; ``write()`` is :func:`write_session` on this engine.
    """

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    reads: HotReads
    """The reads on every request's hot path, without an ORM session."""
    inline_writes: SqliteInlineWrites | None = None
    """Rating upserts on the event loop (a SQLite file only; see
    :mod:`recsys_gql.db.inline_writes`)."""

    @classmethod
    def open(cls, url: str | URL, **engine_options: Any) -> Database:
        """:func:`create_db_engine`, :func:`session_factory`, the hot-path reads and, for a
        SQLite file, the inline rating writes."""
        engine = create_db_engine(url, **engine_options)
        path = sqlite_file(engine)
        return cls(
            engine,
            session_factory(engine),
            hot_reads_for(engine, BUSY_TIMEOUT_MS),
            SqliteInlineWrites(path) if path is not None else None,
        )

    def write(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session in one write transaction (see :func:`write_session`)."""
        return write_session(self.sessions)

    def write_connection(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A Core connection in one write transaction (see :func:`write_connection`): the
        cheapest way to run a few statements (a ``rateMovie`` through an ORM session cost
        four times as much under concurrent writers)."""
        return write_connection(self.engine)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        self.reads.close()
        if self.inline_writes is not None:
            self.inline_writes.close()
        await self.engine.dispose()
