"""Group commit for ratings: concurrent ``rateMovie`` upserts share one write transaction.

SQLite has one write slot, and a transaction costs a fixed handful of round trips to the
driver's thread (check out, ``BEGIN IMMEDIATE``, statements, ``COMMIT``, check in) whatever it
holds. Writing each rating in its own transaction made those round trips the ceiling on
writes per second. Here every rating that arrives while a transaction is being written waits
for the next one, which writes them all with two ``executemany`` statements; each caller
returns only after the transaction holding its rating has committed, so "saved" still means
durable and visible to every reader, in this process or another.

On a SQLite file a transaction runs on the event loop when the write lock is free
(:mod:`recsys_gql.db.inline_writes`: no hop to the driver's thread, where it took a dozen,
each waiting for the GIL); when another connection holds the lock it goes through SQLAlchemy
as before.

A failed batch (which validated input should never produce) is retried one rating per
transaction, so one bad rating fails alone and never takes others with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from recsys_gql.db import repository as repo
from recsys_gql.db.models import RatingRecord
from recsys_gql.db.session import Database

log = logging.getLogger("recsys_gql.db")

MAX_BATCH = 256
"""Most ratings in one transaction (keeps each transaction, and the write slot, short)."""


@dataclass(frozen=True)
class _Pending:
    rating: RatingRecord
    done: asyncio.Future[RatingRecord]


class RatingWriter:
    """Upserts ratings through ``database`` in shared transactions (one per event loop)."""

    def __init__(
        self, database: Database, on_commit: Callable[[int, float], None] | None = None
    ) -> None:
        self.database = database
        self.on_commit = on_commit
        """Called with each committed transaction's rating count and seconds (metrics)."""
        self._pending: list[_Pending] = []
        self._drainer: asyncio.Task[None] | None = None

    async def upsert(
        self, user_id: int, movie_id: int, rating: float, now: datetime
    ) -> RatingRecord:
        """Store the rating (creating the user if new); returns once it is committed."""
        row = RatingRecord(user_id, movie_id, float(rating), now)
        done: asyncio.Future[RatingRecord] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(row, done))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        # shielded: a caller that gives up (a client timeout) must not cancel the others' write
        return await asyncio.shield(done)

    async def close(self) -> None:
        """Wait for every queued rating to be written."""
        if self._drainer is not None:
            await self._drainer

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                await self._write([p.rating for p in batch])
            except Exception as error:
                if len(batch) == 1:
                    _settle(batch[0], error)
                    continue
                log.warning("a batch of %d ratings failed; writing them one by one", len(batch))
                for pending in batch:
                    try:
                        await self._write([pending.rating])
                    except Exception as single_error:
                        _settle(pending, single_error)
                    else:
                        _settle(pending, None)
            else:
                for pending in batch:
                    _settle(pending, None)

    async def _write(self, rows: list[RatingRecord]) -> None:
        started = time.perf_counter()
        inline = self.database.inline_writes
        if inline is None or not inline.try_upsert_ratings(rows):
            # else: committed on the loop (SQLite file, write lock free)
            async with self.database.write_connection() as connection:
                await repo.upsert_ratings(connection, rows)
        if self.on_commit is not None:
            self.on_commit(len(rows), time.perf_counter() - started)


def _settle(pending: _Pending, error: Exception | None) -> None:
    if pending.done.done():
        return
    if error is None:
        pending.done.set_result(pending.rating)
    else:
        pending.done.set_exception(error)
