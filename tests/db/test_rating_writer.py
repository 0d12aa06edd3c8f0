"""Group commit: concurrent ratings share transactions, every acknowledged rating is stored,
the last of two ratings of one movie wins, and a bad rating fails alone."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from recsys_gql.db import repository as repo
from recsys_gql.db.hot_reads import hot_reads_for, sqlite_file
from recsys_gql.db.inline_writes import SqliteInlineWrites
from recsys_gql.db.loader import InitResult
from recsys_gql.db.rating_writer import RatingWriter
from recsys_gql.db.session import BUSY_TIMEOUT_MS, AsyncSession, Database
from tests.db import queries

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlalchemy", "inline"])
def database(
    request: pytest.FixtureRequest,
    db_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    loaded: InitResult,
) -> Iterator[Database]:
    """The loaded tiny dataset, written through SQLAlchemy only or, on a SQLite file, on the
    event loop first (the engine itself is disposed by its fixture)."""
    inline = None
    if request.param == "inline":
        path = sqlite_file(db_engine)
        if path is None:
            pytest.skip("inline writes exist for a SQLite file only")
        inline = SqliteInlineWrites(path)
    opened = Database(db_engine, sessions, hot_reads_for(db_engine, BUSY_TIMEOUT_MS), inline)
    try:
        yield opened
    finally:
        opened.reads.close()
        if inline is not None:
            inline.close()


async def test_concurrent_ratings_share_transactions_and_all_land(
    db_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], database: Database
) -> None:
    transactions: list[int] = []

    def count(_connection: Any) -> None:
        transactions.append(1)

    writer = RatingWriter(database)
    event.listen(db_engine.sync_engine, "begin", count)
    writes = [(100 + i % 20, 1 + i % 5, 0.5 + (i % 10) / 2) for i in range(200)]
    try:
        saved = await asyncio.gather(
            *(
                writer.upsert(user, movie, rating, T0 + timedelta(seconds=i))
                for i, (user, movie, rating) in enumerate(writes)
            )
        )
    finally:
        event.remove(db_engine.sync_engine, "begin", count)
        await writer.close()
    assert [(r.user_id, r.movie_id, r.rating) for r in saved] == writes
    assert len(transactions) < len(writes) / 4  # grouped, not one transaction each
    last: dict[tuple[int, int], float] = {}
    for user, movie, rating in writes:
        last[(user, movie)] = rating  # later submissions win
    async with sessions() as session:
        stored = await queries.ratings_of_users(session, range(100, 120))
    assert {(u, m): r for u, by_movie in stored.items() for m, r in by_movie.items()} == last


async def test_a_bad_rating_fails_alone(
    sessions: async_sessionmaker[AsyncSession], database: Database
) -> None:
    writer = RatingWriter(database)
    results = await asyncio.gather(
        writer.upsert(200, 1, 4.0, T0),
        writer.upsert(201, 9999, 4.0, T0),  # no such movie: the foreign key refuses it
        writer.upsert(202, 2, 3.5, T0),
        return_exceptions=True,
    )
    await writer.close()
    assert isinstance(results[1], IntegrityError)
    async with sessions() as session:
        stored = await queries.ratings_of_users(session, [200, 201, 202])
    assert stored == {200: {1: 4.0}, 201: {}, 202: {2: 3.5}}


async def test_saved_means_committed(database: Database) -> None:
    writer = RatingWriter(database)
    try:
        row = await writer.upsert(1, 3, 1.5, T0)
        assert (row.user_id, row.movie_id, row.rating, row.rated_at) == (1, 3, 1.5, T0)
        # a separate connection (another process's view) sees it at once
        assert (await database.reads.ratings_of_users([1]))[1][3] == 1.5
    finally:
        await writer.close()


async def test_upsert_ratings_needs_a_write_connection(db_engine: AsyncEngine) -> None:
    async with db_engine.connect() as connection:
        with pytest.raises(RuntimeError, match="write_connection"):
            await repo.upsert_ratings(connection, [])


async def test_a_locked_database_is_waited_for_not_refused(database: Database) -> None:
    """Another connection holds the write lock: the rating waits for it (off the loop) and
    lands once it is released."""
    path = sqlite_file(database.engine)
    if path is None:
        pytest.skip("SQLite's file lock; PostgreSQL locks rows")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
    writer = RatingWriter(database)
    try:
        row = await asyncio.wait_for(writer.upsert(300, 2, 2.0, T0), timeout=10)
        assert not other.in_transaction  # it had to wait for the release
    finally:
        release.cancel()
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()
        await writer.close()
    assert row.rating == 2.0
    assert await database.reads.ratings_of_users([300]) == {300: {2: 2.0}}
