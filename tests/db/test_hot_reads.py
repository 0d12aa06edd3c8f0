"""The hot-path reads answer exactly what the repository answers, on SQLite and PostgreSQL,
and see a write committed through another connection at once."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from recsys_gql.db import repository as repo
from recsys_gql.db.hot_reads import (
    CHUNK,
    INLINE_MAX_IDS,
    EngineHotReads,
    HotReads,
    SqliteHotReads,
    hot_reads_for,
)
from recsys_gql.db.loader import InitResult
from recsys_gql.db.session import BUSY_TIMEOUT_MS, AsyncSession, create_db_engine, write_session
from tests.db import queries

NOW = datetime(2026, 1, 2, tzinfo=UTC)


@pytest.fixture
async def reads(db_engine: AsyncEngine, loaded: InitResult) -> AsyncIterator[HotReads]:
    hot = hot_reads_for(db_engine, BUSY_TIMEOUT_MS)
    try:
        yield hot
    finally:
        hot.close()


def test_a_sqlite_file_is_read_directly_and_the_rest_through_the_engine(
    db_engine: AsyncEngine,
) -> None:
    hot = hot_reads_for(db_engine, BUSY_TIMEOUT_MS)
    try:
        expected = SqliteHotReads if db_engine.dialect.name == "sqlite" else EngineHotReads
        assert isinstance(hot, expected)
    finally:
        hot.close()


async def test_memory_sqlite_goes_through_the_engine() -> None:
    engine = create_db_engine("sqlite+aiosqlite://")
    try:
        assert isinstance(hot_reads_for(engine, BUSY_TIMEOUT_MS), EngineHotReads)
    finally:
        await engine.dispose()


async def test_same_answers_as_the_repository(
    reads: HotReads, sessions: async_sessionmaker[AsyncSession]
) -> None:
    users = [2, 1, 42, 1]
    movies = [1, 2, 3, 4, 5, 99]
    async with sessions() as session:
        expected_ratings = await queries.ratings_of_users(session, users)
        expected_stats = await queries.rating_stats(session, movies)
    assert await reads.ratings_of_users(users) == expected_ratings
    assert await reads.ratings_of_users(users) == {
        2: {1: 3.0, 3: 4.5},
        1: {1: 4.0, 2: 5.0, 4: 3.0},
        42: {},
    }
    stats = await reads.rating_stats(movies)
    assert stats.keys() == expected_stats.keys()
    for movie_id, (count, mean) in expected_stats.items():
        assert stats[movie_id][0] == count
        assert stats[movie_id][1] == pytest.approx(mean)
    assert await reads.ratings_of_users([]) == {}
    for user in (1, 2, 42):  # one user at a time takes a shorter statement
        assert await reads.ratings_of_users([user]) == {user: expected_ratings[user]}


async def test_more_ids_than_one_statement_takes(reads: HotReads) -> None:
    many = list(range(1, 2 * CHUNK + 10))
    found = await reads.ratings_of_users(many)
    assert len(found) == len(many)
    assert found[3] == {1: 5.0, 2: 4.0, 3: 2.5, 4: 0.5}
    assert sum(len(r) for r in found.values()) == 9


async def test_a_committed_write_is_seen_by_the_next_read(
    reads: HotReads, db_engine: AsyncEngine
) -> None:
    before = await reads.ratings_of_users([1])
    async with write_session(db_engine) as session:
        await queries.upsert_rating(session, 1, 3, 2.0, NOW)
        await queries.upsert_rating(session, 7, 5, 4.5, NOW)  # a new user
    after = await reads.ratings_of_users([1, 7])
    assert after[1] == {**before[1], 3: 2.0}
    assert after[7] == {5: 4.5}
    assert (await reads.rating_stats([5]))[5] == (1, 4.5)


async def test_tokens_live_and_revoked(reads: HotReads, db_engine: AsyncEngine) -> None:
    async with write_session(db_engine) as session:
        await repo.add_token(session, 2, "a" * 64, NOW)
    assert await reads.user_for_token("a" * 64) == 2
    assert await reads.user_for_token("b" * 64) is None
    async with write_session(db_engine) as session:
        assert await repo.revoke_token(session, "a" * 64, NOW)
    assert await reads.user_for_token("a" * 64) is None


async def test_the_sqlite_reader_cannot_write(reads: HotReads) -> None:
    if not isinstance(reads, SqliteHotReads):
        pytest.skip("only the SQLite reader opens its own connections")
    with pytest.raises(Exception, match="readonly"):
        await reads._run("DELETE FROM ratings", ())


def _sqlite_reads(reads: HotReads) -> SqliteHotReads:
    if not isinstance(reads, SqliteHotReads):
        pytest.skip("only the SQLite reader chooses between the loop and a thread")
    return reads


async def test_reads_for_a_few_ids_run_on_the_event_loop_and_larger_ones_in_a_thread(
    db_engine: AsyncEngine, loaded: InitResult
) -> None:
    hot = _sqlite_reads(hot_reads_for(db_engine, BUSY_TIMEOUT_MS))
    threads: list[int] = []
    hot.trace = lambda _: threads.append(threading.get_ident())  # runs where the read runs
    try:
        assert (await hot.ratings_of_users([1]))[1] == {1: 4.0, 2: 5.0, 4: 3.0}
        assert set(threads) == {threading.get_ident()}
        threads.clear()
        many = list(range(1, INLINE_MAX_IDS + 2))
        assert (await hot.ratings_of_users(many))[2] == {1: 3.0, 3: 4.5}
        assert threads
        assert threading.get_ident() not in threads
    finally:
        hot.close()


async def test_a_read_that_finds_the_database_locked_waits_in_a_thread_not_on_the_loop(
    reads: HotReads, db_engine: AsyncEngine
) -> None:
    _sqlite_reads(reads)
    path = make_url(db_engine.url).database
    assert path is not None
    await db_engine.dispose()  # its pooled connections would keep the lock below from us
    # An exclusive-mode writer shuts every other connection out, even WAL readers.
    locker = sqlite3.connect(path, check_same_thread=False)
    locker.execute("PRAGMA locking_mode = EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("UPDATE ratings SET rating = 1.0 WHERE user_id = 1 AND movie_id = 1")
    ticks = 0

    async def tick() -> None:  # counts while the read waits: the loop must stay free
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    def release() -> None:
        time.sleep(0.3)
        locker.commit()
        locker.execute("PRAGMA locking_mode = NORMAL")
        locker.execute("SELECT 1 FROM ratings LIMIT 1")  # drops the exclusive lock
        locker.close()

    ticker = asyncio.create_task(tick())
    releaser = threading.Thread(target=release)
    releaser.start()
    try:
        found = await reads.ratings_of_users([1])
    finally:
        ticker.cancel()
        releaser.join()
    assert found[1][1] == 1.0  # the committed update, read once the lock was gone
    assert ticks >= 10


async def test_the_change_counter_moves_with_every_commit_by_another_connection(
    reads: HotReads, db_engine: AsyncEngine
) -> None:
    first = await reads.change_counter()
    if not isinstance(reads, SqliteHotReads):
        assert first is None  # no such counter: callers always read
        return
    assert first is not None
    await reads.ratings_of_users([1])
    assert await reads.change_counter() == first  # reading changes nothing
    async with write_session(db_engine) as session:
        await queries.upsert_rating(session, 1, 3, 2.0, NOW)
    second = await reads.change_counter()
    assert second not in (None, first)
    path = make_url(db_engine.url).database
    assert path is not None
    other = sqlite3.connect(path)  # as another process would
    try:
        with other:
            other.execute("UPDATE ratings SET rating = 1.5 WHERE user_id = 1 AND movie_id = 3")
    finally:
        other.close()
    assert await reads.change_counter() not in (None, first, second)
