"""The reads on every request's hot path, without the ORM session.

``recommendations`` reads the user's current ratings on every request, ``rateMovie`` looks up
its bearer token, and a movie page reads rating statistics. Through a SQLModel session over
aiosqlite one such read cost more CPU and more hops to the driver's thread than the engine's
whole ``recommend`` (profiled in-process).

- On a SQLite **file**, :class:`SqliteHotReads` runs the statement with the standard library's
  ``sqlite3`` on a read-only connection. WAL mode lets it read while a writer commits, and each
  statement is its own consistent snapshot. A read for a few ids runs on the event loop itself:
  ``sqlite3`` releases the GIL for every row it steps, so from a worker thread under load each
  row waited for the loop to hand the GIL back, and the hop cost many times the read. It never
  waits there: that connection's busy timeout is 0, and a read that finds the database busy is
  retried in a worker thread, as are reads for many ids.
- Anywhere else (PostgreSQL through asyncpg, an in-memory SQLite), :class:`EngineHotReads` runs
  the same statements through a SQLAlchemy Core connection, already cheap there.

Both return exactly what the ORM queries of the same names in ``tests/db/queries.py`` return
(``tests/db/test_hot_reads.py`` holds them to it), and both read committed data only, so a
rating committed by any process or replica is seen by the next read.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from recsys_gql.db.ids import chunks, unique
from recsys_gql.db.models import ApiToken, HiddenMovie, Rating
from recsys_gql.db.urls import sqlite_file_path

RatingsByUser = dict[int, dict[int, float]]
StatsByMovie = dict[int, tuple[int, float | None]]

CHUNK = 500
"""Ids per ``IN (…)`` list (SQLite allows 32,766 parameters; small lists plan well)."""
INLINE_MAX_IDS = 8
"""Reads for at most this many ids run on the event loop (see the module docstring)."""

_RATINGS = f"SELECT user_id, movie_id, rating FROM {Rating.__tablename__} WHERE user_id IN ({{}})"
_RATINGS_OF_ONE = f"SELECT movie_id, rating FROM {Rating.__tablename__} WHERE user_id = ?"
_STATS = (
    f"SELECT movie_id, COUNT(*), AVG(rating) FROM {Rating.__tablename__} "
    "WHERE movie_id IN ({}) GROUP BY movie_id"
)
_TOKEN = (
    f"SELECT user_id FROM {ApiToken.__tablename__} WHERE token_sha256 = ? AND revoked_at IS NULL"
)

_HIDDEN = f"SELECT movie_id FROM {HiddenMovie.__tablename__} WHERE user_id = ?"


def is_busy(error: sqlite3.Error) -> bool:
    """Whether ``error`` is SQLite finding the database locked by another connection
    (``SQLITE_BUSY`` or ``SQLITE_LOCKED``, with any extended code): worth retrying where
    waiting is allowed."""
    return isinstance(error, sqlite3.OperationalError) and (
        error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    )


def _ratings(rows: Iterable[Any], wanted: Sequence[int]) -> RatingsByUser:
    found: RatingsByUser = {user_id: {} for user_id in wanted}
    for user_id, movie_id, rating in rows:
        found[user_id][movie_id] = float(rating)
    return found


def _stats(rows: Iterable[Any], wanted: Sequence[int]) -> StatsByMovie:
    found: StatsByMovie = {movie_id: (0, None) for movie_id in wanted}
    for movie_id, count, mean in rows:
        found[movie_id] = (int(count), None if mean is None else float(mean))
    return found


class HotReads(ABC):
    """The hot-path reads (see the module docstring). Backends differ only in how one
    statement, written with ``?`` placeholders, is run: :meth:`_run`."""

    @abstractmethod
    async def _run(self, sql: str, parameters: Sequence[Any]) -> list[Any]:
        """The rows of one statement."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (after the last read)."""

    async def _by_ids(self, template: str, ids: Sequence[int]) -> list[Any]:
        rows: list[Any] = []
        for chunk in chunks(ids, CHUNK):
            rows += await self._run(template.format(",".join("?" * len(chunk))), chunk)
        return rows

    async def ratings_of_users(self, user_ids: Iterable[int]) -> RatingsByUser:
        """``{user_id: {movie_id: rating}}``, ``{}`` for a user without ratings."""
        wanted = unique(user_ids)
        if len(wanted) == 1:  # one user's page, the usual case: (movie, rating) pairs as is
            return {wanted[0]: dict(await self._run(_RATINGS_OF_ONE, wanted))}
        return _ratings(await self._by_ids(_RATINGS, wanted), wanted)

    async def rating_stats(self, movie_ids: Iterable[int]) -> StatsByMovie:
        """``{movie_id: (count, mean)}``, ``(0, None)`` for an unrated movie."""
        wanted = unique(movie_ids)
        return _stats(await self._by_ids(_STATS, wanted), wanted)

    async def change_counter(self) -> int | None:
        """A number that changes whenever any connection commits to the database, or
        ``None`` when the backend has none (then callers must read to know)."""
        return None

    async def user_for_token(self, token_sha256: str) -> int | None:
        """The user of a live token, or ``None``."""
        rows = await self._run(_TOKEN, (token_sha256,))
        return int(rows[0][0]) if rows else None

    async def hidden_movies(self, user_id: int) -> frozenset[int]:
        """The movies ``user_id`` hid (``hideMovie``), read on every personalised list."""
        return frozenset(int(row[0]) for row in await self._run(_HIDDEN, (user_id,)))


class SqliteHotReads(HotReads):
    """Reads through ``sqlite3`` on per-thread read-only connections to one database file."""

    def __init__(self, path: Path, busy_timeout_ms: int) -> None:
        self.uri = f"{path.resolve().as_uri()}?mode=ro"
        self.busy_timeout_ms = busy_timeout_ms
        # Two threads: reads are short, and more threads only contend for the GIL.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hot-reads")
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.trace: Callable[[str], None] | None = None
        """Called with every statement run (set it before the first read; for tests)."""

    def _connection(self, busy_timeout_ms: int) -> sqlite3.Connection:
        """This thread's connection with this busy timeout (the loop's thread has one with 0)."""
        name = f"connection_{busy_timeout_ms}"
        connection: sqlite3.Connection | None = getattr(self._local, name, None)
        if connection is None:
            connection = sqlite3.connect(self.uri, uri=True, check_same_thread=False)
            connection.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            connection.set_trace_callback(self.trace)
            setattr(self._local, name, connection)
            with self._lock:
                self._opened.append(connection)
        return connection

    def _fetch(self, sql: str, parameters: Sequence[Any]) -> list[Any]:
        return self._connection(self.busy_timeout_ms).execute(sql, parameters).fetchall()

    async def _run(self, sql: str, parameters: Sequence[Any]) -> list[Any]:
        if len(parameters) <= INLINE_MAX_IDS:
            try:
                return self._connection(0).execute(sql, parameters).fetchall()
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._fetch, sql, parameters)

    async def change_counter(self) -> int | None:
        """``PRAGMA data_version`` of the event loop's connection: it moves when any other
        connection, in any process, commits (this one only reads). Microseconds, no I/O
        beyond the WAL index; ``None`` if SQLite is busy."""
        try:
            row = self._connection(0).execute("PRAGMA data_version").fetchone()
        except sqlite3.OperationalError:
            return None
        return int(row[0])

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            for connection in self._opened:
                connection.close()
            self._opened.clear()


class EngineHotReads(HotReads):
    """The same reads through a SQLAlchemy Core connection of ``engine``.

    On PostgreSQL the connection runs in autocommit: each read is one statement, and so one
    snapshot, either way, and a transaction around it cost two more round trips (``BEGIN``,
    then the pool's ``ROLLBACK`` on check-in) on every request's token lookup."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        )

    async def _run(self, sql: str, parameters: Sequence[Any]) -> list[Any]:
        pieces = sql.split("?")  # the statements above have no literal question marks
        named = "".join(f"{piece}:p{i}" for i, piece in enumerate(pieces[:-1])) + pieces[-1]
        values = {f"p{i}": value for i, value in enumerate(parameters)}
        async with self._reader.connect() as connection:
            return list((await connection.execute(text(named), values)).all())

    def close(self) -> None:
        """Nothing of its own: the engine's pool is disposed with the engine."""


def sqlite_file(engine: AsyncEngine) -> Path | None:
    """The database file of a SQLite ``engine``; ``None`` for an in-memory SQLite database or
    another backend."""
    return sqlite_file_path(make_url(engine.url))


def hot_reads_for(engine: AsyncEngine, busy_timeout_ms: int) -> HotReads:
    """:class:`SqliteHotReads` for a SQLite file, else :class:`EngineHotReads`."""
    path = sqlite_file(engine)
    if path is not None:
        return SqliteHotReads(path, busy_timeout_ms)
    return EngineHotReads(engine)
