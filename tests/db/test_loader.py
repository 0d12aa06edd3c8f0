"""init_database: loads a MovieLens folder once, atomically, and refuses to overwrite another
dataset without force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select

from recsys_gql.db.loader import DatasetMismatch, dataset_fingerprint, init_database
from recsys_gql.db.models import DatasetInfo, Movie, Rating, User
from recsys_gql.db.session import AsyncSession, write_session
from recsys_gql.errors import DataValidationError
from tests.db.conftest import RATINGS, write_tiny_dataset
from tests.db.queries import upsert_rating


async def counts(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
    async with sessions() as session:
        movies = (await session.exec(select(func.count()).select_from(Movie))).one()
        users = (await session.exec(select(func.count()).select_from(User))).one()
        ratings = (await session.exec(select(func.count()).select_from(Rating))).one()
    return movies, users, ratings


async def test_init_loads_the_tiny_dataset(
    db_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], tiny_dir: Path
) -> None:
    result = await init_database(db_engine, tiny_dir)
    assert result.status == "loaded"
    assert (result.movies, result.users, result.ratings) == (5, 3, 9)
    assert await counts(sessions) == (5, 3, 9)

    async with sessions() as session:
        movies = {m.id: m for m in await session.exec(select(Movie))}
        toy, amelie, babylon, shining, off = (movies[i] for i in range(1, 6))
        assert (toy.title, toy.year) == ("Toy Story", 1995)
        assert (amelie.title, amelie.year) == (
            "Amélie (Fabuleux destin d'Amélie Poulain, Le)",
            2001,
        )
        assert (babylon.title, babylon.year) == ("Babylon 5", None)
        assert (shining.title, shining.year) == ("Shining, The", 1980)
        assert (off.title, off.year, off.genres) == ("50% Off", 2010, "")
        assert toy.genres == "Adventure|Animation|Children|Comedy|Fantasy"
        assert toy.genre_list == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
        assert (toy.tmdb_id, toy.imdb_id) == (862, "0114709")
        assert (babylon.tmdb_id, babylon.imdb_id) == (None, "0105946")
        assert (off.tmdb_id, off.imdb_id) == (None, None)
        assert amelie.overview == "Amélie secretly orchestrates the lives of others."
        assert babylon.overview == ""

        rating = await session.get(Rating, (1, 2))
        assert rating is not None
        assert rating.rating == 5.0
        assert rating.rated_at == datetime.fromtimestamp(964981247, UTC)
        assert rating.rated_at.tzinfo is not None
        user = await session.get(User, 1)
        assert user is not None
        assert user.created_at == datetime.fromtimestamp(964981247, UTC)  # their first rating

        info = await session.get(DatasetInfo, 1)
        assert info is not None
        assert info.sha256 == result.fingerprint == dataset_fingerprint(tiny_dir)[0]
        assert set(info.files) == {
            "movies.csv",
            "ratings.csv",
            "links.csv",
            "tags.csv",
            "overviews.csv",
        }
        assert (info.movies, info.users, info.ratings) == (5, 3, 9)


async def test_init_twice_is_a_no_op(
    db_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], tiny_dir: Path
) -> None:
    first = await init_database(db_engine, tiny_dir)
    async with write_session(sessions) as session:
        await upsert_rating(session, 77, 5, 4.0, datetime.now(UTC))  # a user-written rating

    second = await init_database(db_engine, tiny_dir)
    assert second.status == "unchanged"
    assert not second.changed
    assert second.fingerprint == first.fingerprint
    assert (second.movies, second.users, second.ratings) == (5, 3, 9)
    assert await counts(sessions) == (5, 4, 10)  # the user-written rating survived


async def test_init_by_url_creates_and_disposes_its_own_engine(tmp_path: Path) -> None:
    folder = write_tiny_dataset(tmp_path / "tiny")
    url = f"sqlite+aiosqlite:///{tmp_path / 'new' / 'folder' / 'recsys.db'}"
    assert (await init_database(url, folder)).status == "loaded"
    assert (await init_database(url, folder)).status == "unchanged"
    assert (tmp_path / "new" / "folder" / "recsys.db").is_file()


async def test_a_different_dataset_is_refused_without_force(
    db_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    tiny_dir: Path,
    tmp_path: Path,
) -> None:
    first = await init_database(db_engine, tiny_dir)
    async with write_session(sessions) as session:
        await upsert_rating(session, 77, 5, 4.0, datetime.now(UTC))
    other = write_tiny_dataset(tmp_path / "other", ratings=RATINGS[:4])

    with pytest.raises(DatasetMismatch, match=r"1 of them written after the load.*force=True"):
        await init_database(db_engine, other)
    assert await counts(sessions) == (5, 4, 10)  # nothing was touched
    async with sessions() as session:
        info = await session.get(DatasetInfo, 1)
        assert info is not None
        assert info.sha256 == first.fingerprint

    replaced = await init_database(db_engine, other, force=True)
    assert replaced.status == "replaced"
    assert (replaced.movies, replaced.users, replaced.ratings) == (5, 2, 4)
    assert await counts(sessions) == (5, 2, 4)
    assert (await init_database(db_engine, other)).status == "unchanged"


async def test_rows_without_a_fingerprint_are_not_overwritten(
    db_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], tiny_dir: Path
) -> None:
    await init_database(db_engine, tiny_dir)
    async with write_session(sessions) as session:
        info = await session.get(DatasetInfo, 1)
        assert info is not None
        await session.delete(info)
    with pytest.raises(DatasetMismatch, match="without a dataset fingerprint"):
        await init_database(db_engine, tiny_dir)
    assert (await init_database(db_engine, tiny_dir, force=True)).status == "replaced"


async def test_loading_is_all_or_nothing(
    db_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    tiny_dir: Path,
    tmp_path: Path,
) -> None:
    """A failure after the old rows were deleted and the new movies inserted leaves the old
    dataset exactly as it was."""
    first = await init_database(db_engine, tiny_dir)
    other = write_tiny_dataset(tmp_path / "other", ratings=RATINGS[:4])

    def fail_on_ratings(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO RATINGS"):
            raise RuntimeError("injected failure while inserting ratings")

    event.listen(db_engine.sync_engine, "before_cursor_execute", fail_on_ratings)
    try:
        with pytest.raises(RuntimeError, match="injected failure"):
            await init_database(db_engine, other, force=True)
    finally:
        event.remove(db_engine.sync_engine, "before_cursor_execute", fail_on_ratings)

    assert await counts(sessions) == (5, 3, 9)
    async with sessions() as session:
        info = await session.get(DatasetInfo, 1)
        assert info is not None
        assert info.sha256 == first.fingerprint


async def test_invalid_data_is_refused_before_any_write(
    db_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    bad = write_tiny_dataset(tmp_path / "bad", ratings=[*RATINGS, (4, 5, 7.0, 1000000400)])
    with pytest.raises(DataValidationError, match=r"ratings\.csv, line 11: rating 7.0"):
        await init_database(db_engine, bad)
    assert await counts(sessions) == (0, 0, 0)

    unknown = write_tiny_dataset(tmp_path / "unknown", ratings=[*RATINGS, (4, 99, 3.0, 1)])
    with pytest.raises(DataValidationError, match=r"movie 99 is rated but is not in movies\.csv"):
        await init_database(db_engine, unknown)


async def test_dates_are_aware_utc(
    sessions: async_sessionmaker[AsyncSession], loaded: object
) -> None:
    async with sessions() as session:
        stamps = list(await session.exec(select(Rating.rated_at).order_by(col(Rating.rated_at))))
    assert all(stamp.utcoffset() == timedelta(0) for stamp in stamps)
    assert stamps[0] == datetime(2000, 7, 30, 18, 20, 47, tzinfo=UTC)


def test_fingerprint_matches_the_training_manifest(tiny_dir: Path) -> None:
    """The stored fingerprint is the artifact manifest's ``data.sha256`` for the same folder,
    so the server can check that catalog and artifacts agree."""
    from recsys_gql.movielens import fingerprint

    digest, files = dataset_fingerprint(tiny_dir)
    expected = fingerprint(tiny_dir)
    assert digest == expected.sha256
    assert files == expected.files
