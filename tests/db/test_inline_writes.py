"""Rating upserts on the event loop (SQLite file only): the same rows as the SQLAlchemy path,
nothing written when the database is busy or a row is refused, and the WAL checkpointed in the
background rather than by the loop's connection."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from recsys_gql.db import inline_writes
from recsys_gql.db import repository as repo
from recsys_gql.db.hot_reads import sqlite_file
from recsys_gql.db.inline_writes import SqliteInlineWrites
from recsys_gql.db.loader import init_database
from recsys_gql.db.models import RatingRecord
from recsys_gql.db.session import AsyncSession, create_db_engine, session_factory, write_connection

T0 = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
async def sqlite_engine(tmp_path: Path, tiny_dir: Path) -> AsyncIterator[AsyncEngine]:
    """A SQLite file with the tiny dataset loaded."""
    engine = create_db_engine(f"sqlite+aiosqlite:///{tmp_path / 'recsys.db'}")
    await init_database(engine, tiny_dir)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def path(sqlite_engine: AsyncEngine) -> Path:
    found = sqlite_file(sqlite_engine)
    assert found is not None
    return found


@pytest.fixture
def writes(path: Path) -> Iterator[SqliteInlineWrites]:
    inline = SqliteInlineWrites(path)
    try:
        yield inline
    finally:
        inline.close()


def _raw(path: Path, user_id: int) -> list[tuple[int, float, str]]:
    """The stored rows of one user as SQLite holds them (timestamps as text)."""
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT movie_id, rating, rated_at FROM ratings WHERE user_id = ? ORDER BY movie_id",
            (user_id,),
        ).fetchall()


def _rows(user_id: int, ratings: list[tuple[int, float]], at: datetime = T0) -> list[RatingRecord]:
    return [
        RatingRecord(user_id, m, r, at + timedelta(seconds=i)) for i, (m, r) in enumerate(ratings)
    ]


async def test_stores_exactly_what_the_sqlalchemy_path_stores(
    sqlite_engine: AsyncEngine, path: Path, writes: SqliteInlineWrites
) -> None:
    ratings = [(1, 4.0), (2, 2.5), (1, 3.5)]  # movie 1 twice: the later rating wins
    async with write_connection(sqlite_engine) as connection:
        await repo.upsert_ratings(connection, _rows(500, ratings))
    assert writes.try_upsert_ratings(_rows(501, ratings))

    assert _raw(path, 501) == _raw(path, 500)
    assert [row[:2] for row in _raw(path, 501)] == [(1, 3.5), (2, 2.5)]
    sessions: async_sessionmaker[AsyncSession] = session_factory(sqlite_engine)
    async with sessions() as session:
        assert await repo.get_user(session, 501) is not None  # the user was created
        page, _, _ = await repo.ratings_page(session, 501, first=10)
        # read back through the ORM: aware UTC datetimes equal to those written
        assert {(r.movie_id, r.rated_at) for r in page} == {
            (1, T0 + timedelta(seconds=2)),
            (2, T0 + timedelta(seconds=1)),
        }


def test_re_rating_updates_in_place(path: Path, writes: SqliteInlineWrites) -> None:
    assert writes.try_upsert_ratings(_rows(1, [(1, 0.5)]))
    assert writes.try_upsert_ratings(_rows(1, [(1, 5.0)]))
    assert [row[:2] for row in _raw(path, 1)] == [(1, 5.0), (2, 5.0), (4, 3.0)]


def test_a_busy_database_writes_nothing_and_then_succeeds(
    path: Path, writes: SqliteInlineWrites
) -> None:
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        assert writes.try_upsert_ratings(_rows(600, [(1, 4.0)])) is False
        other.execute("COMMIT")
    finally:
        other.close()
    assert _raw(path, 600) == []
    assert writes.try_upsert_ratings(_rows(600, [(1, 4.0)]))
    assert [row[:2] for row in _raw(path, 600)] == [(1, 4.0)]


def test_a_refused_row_rolls_back_the_whole_batch(
    path: Path, writes: SqliteInlineWrites, caplog: pytest.LogCaptureFixture
) -> None:
    batch = _rows(700, [(1, 4.0), (9999, 3.0)])  # no movie 9999: the foreign key refuses it
    assert writes.try_upsert_ratings(batch) is False
    assert "FOREIGN KEY" in caplog.text
    assert _raw(path, 700) == []
    assert writes.try_upsert_ratings(_rows(700, [(1, 4.0)]))  # the connection is still usable
    assert [row[:2] for row in _raw(path, 700)] == [(1, 4.0)]


def _in_main_file(path: Path, user_id: int) -> bool:
    """Whether the main database file itself (the WAL ignored) holds a rating of the user."""
    with sqlite3.connect(f"{path.as_uri()}?immutable=1", uri=True) as connection:
        row = connection.execute(
            "SELECT COUNT(*) FROM ratings WHERE user_id = ?", (user_id,)
        ).fetchone()
    return bool(row[0])


def test_the_wal_is_checkpointed_in_the_background_only(
    path: Path, writes: SqliteInlineWrites, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline_writes, "CHECKPOINT_EVERY_ROWS", 3)
    with sqlite3.connect(path) as connection:  # the loaded dataset into the main file first
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert writes.try_upsert_ratings(_rows(800, [(1, 4.0), (2, 4.0)]))
    writes.wait_for_checkpoint()
    assert not _in_main_file(path, 800)  # committed to the WAL, not copied by the loop
    assert writes.try_upsert_ratings(_rows(801, [(3, 4.0)]))  # the third row: checkpoint
    writes.wait_for_checkpoint()
    assert _in_main_file(path, 800)
    assert _in_main_file(path, 801)
