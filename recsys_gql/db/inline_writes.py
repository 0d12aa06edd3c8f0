"""Rating upserts on the event loop for a SQLite file: the write-side twin of
:class:`~recsys_gql.db.hot_reads.SqliteHotReads`.

Through SQLAlchemy over aiosqlite, one batch of ``rateMovie`` upserts took a dozen hops to the
driver's thread (check out, ``BEGIN IMMEDIATE``, two ``executemany``, ``COMMIT``, the rollback
on check-in), and every hop waited for the busy event loop to hand back the GIL; in WAL mode
with ``synchronous=NORMAL`` the transaction itself is short, because a commit appends to the
WAL and does not sync. So :class:`SqliteInlineWrites` runs the
whole transaction on the loop with the standard library's ``sqlite3``, on its own connection,
and never waits there:

- its busy timeout is 0, so when another connection holds the write lock (another worker
  process, ``recsys-gql db init``, a sign-up in flight) ``BEGIN IMMEDIATE`` fails at once and
  :meth:`try_upsert_ratings` answers ``False``: the caller writes through the ordinary path,
  which waits for the lock in a thread. Any other refusal (a constraint) is rolled back and
  answered the same way, so the ordinary path raises its usual error;
- it never checkpoints the WAL itself (``wal_autocheckpoint = 0``: a checkpoint syncs files;
  77-112 ms for 6,000 pages on the development machine), but after every
  :data:`CHECKPOINT_EVERY_ROWS` ratings a passive checkpoint runs on a connection of its own
  in a background thread (``sqlite3`` releases the GIL for the whole of it), so the WAL stays
  small.

The rows are exactly those :func:`recsys_gql.db.repository.upsert_ratings` writes: the same
statements (insert the user unless present, then insert or update the rating) and the same
timestamp text, made by the column type's own SQLAlchemy bind processor.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy.dialects import sqlite

from recsys_gql.db.hot_reads import is_busy
from recsys_gql.db.models import Rating, RatingRecord, User

log = logging.getLogger("recsys_gql.db")

CHECKPOINT_EVERY_ROWS = 1_000
"""Ratings written between two background WAL checkpoints (about 1,500 WAL pages of
ml-latest-small; SQLite's own automatic checkpoint comes every 1,000 pages)."""

_USER = (
    f"INSERT INTO {User.__tablename__} (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING"
)
_RATING = (
    f"INSERT INTO {Rating.__tablename__} (user_id, movie_id, rating, rated_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (user_id, movie_id) "
    "DO UPDATE SET rating = excluded.rating, rated_at = excluded.rated_at"
)


def _timestamp_processor() -> Callable[[Any], Any]:
    """The SQLite bind processor of ``ratings.rated_at`` (``UTCDateTime``): aware datetime in,
    the text SQLAlchemy stores out."""
    processor = Rating.__table__.c.rated_at.type.bind_processor(sqlite.dialect())  # type: ignore[attr-defined]
    if processor is None:  # pragma: no cover - UTCDateTime always has one
        raise RuntimeError("ratings.rated_at has no bind processor")
    return processor  # type: ignore[no-any-return]


def _log_failure(done: Future[None]) -> None:
    error = done.exception()
    if error is not None:  # the WAL only grows until a later checkpoint succeeds
        log.warning("background WAL checkpoint failed: %s", error)


class SqliteInlineWrites:
    """Rating upserts on the calling thread, for one SQLite file (see the module docstring).
    Not thread-safe: call it from the event loop's thread only."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self._connection: sqlite3.Connection | None = None
        self._timestamp = _timestamp_processor()
        self._rows_since_checkpoint = 0
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
        self._checkpoint: Future[None] | None = None
        self._checkpoint_connection: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()

    def _writer(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA busy_timeout = 0")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA wal_autocheckpoint = 0")
            self._connection = connection
        return self._connection

    def try_upsert_ratings(self, rows: Sequence[Rating | RatingRecord]) -> bool:
        """Upsert ``rows`` (creating their users) in one committed transaction, in order, so a
        later rating of the same movie by the same user wins. ``False`` when nothing was
        written: the database was busy, or SQLite refused the batch (a constraint, say; logged),
        in which case the caller's ordinary path writes it or raises its usual error."""
        if not rows:
            return True
        connection = self._writer()
        users = {row.user_id: self._timestamp(row.rated_at) for row in rows}
        ratings = [
            (row.user_id, row.movie_id, float(row.rating), self._timestamp(row.rated_at))
            for row in rows
        ]
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(_USER, users.items())
            connection.executemany(_RATING, ratings)
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            if not is_busy(error):
                log.warning("inline rating write refused (%s); retrying through SQLAlchemy", error)
            return False
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        self._rows_since_checkpoint += len(rows)
        if self._rows_since_checkpoint >= CHECKPOINT_EVERY_ROWS:
            self._start_checkpoint()
        return True

    def _start_checkpoint(self) -> None:
        if self._checkpoint is not None and not self._checkpoint.done():
            return  # one at a time; the next write tries again
        self._rows_since_checkpoint = 0
        self._checkpoint = self._checkpointer.submit(self._run_checkpoint)
        self._checkpoint.add_done_callback(_log_failure)

    def _run_checkpoint(self) -> None:
        with self._checkpoint_lock:
            if self._checkpoint_connection is None:
                self._checkpoint_connection = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False
                )
            # PASSIVE: copies what it can without waiting for, or blocking, anyone.
            self._checkpoint_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def wait_for_checkpoint(self) -> None:
        """Block until a running background checkpoint has finished (for tests and close)."""
        if self._checkpoint is not None:
            self._checkpoint.result()

    def close(self) -> None:
        """Finish any checkpoint and close both connections."""
        self._checkpointer.shutdown(wait=True)
        with self._checkpoint_lock:
            if self._checkpoint_connection is not None:
                self._checkpoint_connection.close()
                self._checkpoint_connection = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
