"""Hidden movies on SQLite and PostgreSQL: hide and unhide are idempotent, need a write
transaction, respect the foreign keys, and the hot-path read returns what was committed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from recsys_gql.db import feedback
from recsys_gql.db.hot_reads import hot_reads_for
from recsys_gql.db.loader import InitResult
from recsys_gql.db.session import AsyncSession, write_session

NOW = datetime(2026, 12, 2, tzinfo=UTC)


async def test_hide_and_unhide_round_trip(
    db_engine: AsyncEngine, loaded: InitResult, sessions: async_sessionmaker[AsyncSession]
) -> None:
    reads = hot_reads_for(db_engine, 1000)
    try:
        async with write_session(db_engine) as session:
            assert await feedback.hide(session, 1, 3, NOW) is True
            assert await feedback.hide(session, 1, 3, NOW) is False
            assert await feedback.hide(session, 1, 4, NOW) is True
            assert await feedback.hide(session, 2, 4, NOW) is True
        async with sessions() as session:
            assert await feedback.hidden_movies(session, 1) == {3, 4}
            assert await feedback.hidden_movies(session, 3) == frozenset()
        assert await reads.hidden_movies(1) == {3, 4}
        assert await reads.hidden_movies(2) == {4}
        async with write_session(db_engine) as session:
            assert await feedback.unhide(session, 1, 3) is True
            assert await feedback.unhide(session, 1, 3) is False
        assert await reads.hidden_movies(1) == {4}
        assert await reads.hidden_movies(2) == {4}  # another user's hide is untouched
    finally:
        reads.close()


async def test_writes_need_a_write_transaction(
    loaded: InitResult, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session:
        with pytest.raises(RuntimeError, match="write_session"):
            await feedback.hide(session, 1, 3, NOW)
        with pytest.raises(RuntimeError, match="write_session"):
            await feedback.unhide(session, 1, 3)


async def test_a_hide_of_an_unknown_movie_is_refused_whole(
    db_engine: AsyncEngine, loaded: InitResult, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async def hide_both() -> None:
        async with write_session(db_engine) as session:
            await feedback.hide(session, 1, 3, NOW)
            await feedback.hide(session, 1, 999_999, NOW)

    with pytest.raises(IntegrityError):
        await hide_both()
    async with sessions() as session:
        assert await feedback.hidden_movies(session, 1) == frozenset()  # nothing half-written
