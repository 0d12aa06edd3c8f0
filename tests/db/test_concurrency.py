"""Many concurrent writers: no error, one row per (user, movie), the last acknowledged value
wins — on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, func
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select

from recsys_gql.db.loader import InitResult, init_database
from recsys_gql.db.models import Rating
from recsys_gql.db.session import AsyncSession, create_db_engine, session_factory, write_session
from tests.db import queries
from tests.db.conftest import write_tiny_dataset

USERS = (1, 2, 3, 500, 501)  # 500 and 501 do not exist yet: created by concurrent first writes
MOVIES = (1, 2, 3, 4, 5)
PAIRS = [(u, m) for u in USERS for m in MOVIES]  # 25 pairs
VALUES = [0.5 * k for k in range(1, 11)]  # 10 distinct valid ratings


async def test_200_concurrent_upserts(
    db_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], loaded: InitResult
) -> None:
    """A write is acknowledged when the database's COMMIT returns to the client (recorded by the
    session's ``after_commit`` event, with no await in between). On SQLite the process lock
    also orders the moments ``write_session`` returns; on PostgreSQL those can interleave after
    the commit (returning the connection to the pool awaits), so only commit order counts."""
    writes = [(PAIRS[i % len(PAIRS)], VALUES[(i // len(PAIRS)) % len(VALUES)]) for i in range(200)]
    random.Random(3).shuffle(writes)
    committed: list[tuple[tuple[int, int], float]] = []
    returned: list[tuple[tuple[int, int], float]] = []
    reads = 0

    async def write(pair: tuple[int, int], value: float) -> None:
        async with write_session(sessions) as session:
            row = await queries.upsert_rating(session, pair[0], pair[1], value, datetime.now(UTC))
            assert row.rating == value
            event.listen(
                session.sync_session, "after_commit", lambda _s: committed.append((pair, value))
            )
            await asyncio.sleep(0)  # let other tasks run while the transaction is open
        returned.append((pair, value))

    async def read() -> None:
        nonlocal reads
        async with sessions() as session:
            ratings = await queries.ratings_of_users(session, USERS)
            await queries.rating_stats(session, MOVIES)
        assert set(ratings) == set(USERS)
        reads += 1

    tasks = [write(pair, value) for pair, value in writes] + [read() for _ in range(40)]
    random.Random(4).shuffle(tasks)
    await asyncio.gather(*tasks)

    assert len(committed) == len(returned) == 200
    assert reads == 40
    async with sessions() as session:
        rows = await session.exec(
            select(Rating.user_id, Rating.movie_id, func.count(), func.max(Rating.rating))
            .where(col(Rating.user_id).in_(USERS))
            .group_by(col(Rating.user_id), col(Rating.movie_id))
        )
        stored = {(u, m): (n, value) for u, m, n, value in rows}
        assert await queries.users_exist(session, USERS) == set(USERS)
    assert set(stored) == set(PAIRS)
    assert {pair: n for pair, (n, _) in stored.items()} == dict.fromkeys(PAIRS, 1)
    values = {pair: value for pair, (_, value) in stored.items()}
    assert values == dict(committed)  # later acknowledgements overwrite earlier ones
    if db_engine.dialect.name == "sqlite":
        assert values == dict(returned)


async def test_two_engines_on_one_sqlite_file(tmp_path: Path) -> None:
    """Writers that share no asyncio.Lock (another engine or process on the same file) wait in
    SQLite's busy handler thanks to BEGIN IMMEDIATE instead of failing with "database is
    locked"."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    await init_database(url, write_tiny_dataset(tmp_path / "tiny"))
    engines: list[AsyncEngine] = [create_db_engine(url), create_db_engine(url)]
    try:
        factories = [session_factory(engine) for engine in engines]
        acknowledged: list[tuple[tuple[int, int], float]] = []

        async def write(i: int) -> None:
            pair = PAIRS[i % len(PAIRS)]
            value = VALUES[i % len(VALUES)]
            async with write_session(factories[i % 2]) as session:
                # Read first, then write: the pattern that fails under a deferred BEGIN.
                await queries.get_rating(session, *pair)
                await queries.upsert_rating(session, pair[0], pair[1], value, datetime.now(UTC))
                await asyncio.sleep(0)
            acknowledged.append((pair, value))

        await asyncio.gather(*(write(i) for i in range(120)))
        last = dict(acknowledged)
        async with factories[0]() as session:
            ratings = await queries.ratings_of_users(session, USERS)
        assert {(u, m): ratings[u][m] for u, m in PAIRS} == last
    finally:
        for engine in engines:
            await engine.dispose()
