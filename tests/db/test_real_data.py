"""The real ml-latest-small loads completely, and quickly (timing is printed, not asserted)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select

from recsys_gql.db import repository as repo
from recsys_gql.db.loader import init_database
from recsys_gql.db.models import Movie
from recsys_gql.db.session import AsyncSession
from tests.db import queries

pytestmark = pytest.mark.integration


@pytest.fixture
def ml_latest_small(real_data_source: Path, tmp_path: Path) -> Path:
    """The real CSVs, with the TMDB overviews beside them when the source has them."""
    source = real_data_source / "ml-latest-small"
    if not (source / "ratings.csv").is_file():
        source = real_data_source  # RECSYS_GQL_DATA_SOURCE may point at the folder itself
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    for name in ("movies.csv", "ratings.csv", "links.csv", "tags.csv", "overviews.csv"):
        if (source / name).is_file():
            shutil.copyfile(source / name, folder / name)
    overviews = source.parent / "ml-latest-small-overviews" / "overviews.csv"
    if overviews.is_file() and not (folder / "overviews.csv").exists():
        shutil.copyfile(overviews, folder / "overviews.csv")
    return folder


async def test_load_ml_latest_small(
    db_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    ml_latest_small: Path,
    capsys: pytest.CaptureFixture[str],
    record_property: Callable[[str, object], None],
) -> None:
    started = time.perf_counter()
    result = await init_database(db_engine, ml_latest_small)
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = await init_database(db_engine, ml_latest_small)
    noop_seconds = time.perf_counter() - started

    assert result.status == "loaded"
    assert (result.movies, result.users, result.ratings) == (9742, 610, 100836)
    assert again.status == "unchanged"
    async with sessions() as session:
        page, has_next, total = await repo.list_movies(session, first=100)
        assert (len(page), has_next, total) == (100, True, 9742)
        toy = await repo.get_movie(session, 1)
        assert toy is not None
        assert (toy.title, toy.year, toy.tmdb_id, toy.imdb_id) == (
            "Toy Story",
            1995,
            862,
            "0114709",
        )
        stats = await queries.rating_stats(session, [1])
        assert stats[1][0] == 215
        assert (
            sum(len(r) for r in (await queries.ratings_of_users(session, range(1, 611))).values())
            == 100836
        )
        with_overview = (
            await session.exec(
                select(func.count()).select_from(Movie).where(col(Movie.overview) != "")
            )
        ).one()
        if (ml_latest_small / "overviews.csv").is_file():
            assert with_overview > 9000

    backend = db_engine.dialect.name
    record_property(f"{backend}_load_seconds", round(load_seconds, 3))
    with capsys.disabled():
        print(
            f"\n[db] ml-latest-small -> {backend}: loaded 9,742 movies, 610 users, "
            f"100,836 ratings ({with_overview} overviews) in {load_seconds:.2f}s; "
            f"second init (no-op) {noop_seconds * 1000:.0f} ms"
        )
