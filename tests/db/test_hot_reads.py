"""The hot-path reads answer exactly what the repository answers, on SQLite and PostgreSQL,
and see a write committed through another connection at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from recsys_gql.db import repository as repo
from recsys_gql.db.hot_reads import (
    CHUNK,
    EngineHotReads,
    HotReads,
    SqliteHotReads,
    hot_reads_for,
)
from recsys_gql.db.loader import InitResult
from recsys_gql.db.session import BUSY_TIMEOUT_MS, AsyncSession, create_db_engine, write_session

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
        expected_ratings = await repo.ratings_of_users(session, users)
        expected_stats = await repo.rating_stats(session, movies)
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
        await repo.upsert_rating(session, 1, 3, 2.0, NOW)
        await repo.upsert_rating(session, 7, 5, 4.5, NOW)  # a new user
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
