"""Repository queries on the tiny dataset: known answers on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select

from recsys_gql.db import repository as repo
from recsys_gql.db.loader import InitResult
from recsys_gql.db.models import Movie, Rating, User
from recsys_gql.db.session import AsyncSession, write_session
from tests.db import queries


async def page_through(
    session: AsyncSession, first: int, **filters: Any
) -> tuple[list[list[int]], list[bool], set[int]]:
    pages: list[list[int]] = []
    flags: list[bool] = []
    totals: set[int] = set()
    after: int | None = None
    while True:
        movies, has_next, total = await repo.list_movies(
            session, first=first, after_id=after, **filters
        )
        pages.append([m.id for m in movies])
        flags.append(has_next)
        totals.add(total)
        if not has_next:
            return pages, flags, totals
        after = movies[-1].id


async def test_list_movies_pages_to_the_end(
    sessions: async_sessionmaker[AsyncSession], loaded: InitResult
) -> None:
    async with sessions() as session:
        pages, flags, totals = await page_through(session, 2)
        assert pages == [[1, 2], [3, 4], [5]]
        assert flags == [True, True, False]
        assert totals == {5}

        pages, flags, totals = await page_through(session, 5)
        assert (pages, flags, totals) == ([[1, 2, 3, 4, 5]], [False], {5})

        movies, has_next, total = await repo.list_movies(session, first=3, after_id=5)
        assert (movies, has_next, total) == ([], False, 5)

        movies, has_next, total = await repo.list_movies(session, first=0)
        assert (movies, has_next, total) == ([], True, 5)
        with pytest.raises(ValueError, match="first"):
            await repo.list_movies(session, first=-1)


async def test_list_movies_search_is_case_insensitive(
    sessions: async_sessionmaker[AsyncSession], loaded: InitResult
) -> None:
    async with sessions() as session:

        async def ids(search: str) -> list[int]:
            movies, _, total = await repo.list_movies(session, search=search)
            assert total == len(movies)
            return [m.id for m in movies]

        assert await ids("TOY") == [1]
        assert await ids("story") == [1]
        assert await ids("AMÉLIE") == [2]  # non-ASCII case folding, on SQLite too
        assert await ids("shining, the") == [4]
        assert await ids("%") == [5]  # wildcards are literal
        assert await ids("_") == []
        assert await ids("1995") == []  # the year is not part of the title
        assert await ids("  ") == [1, 2, 3, 4, 5]


async def test_list_movies_genre_and_year_filters(
    sessions: async_sessionmaker[AsyncSession], loaded: InitResult
) -> None:
    async with sessions() as session:

        async def ids(**filters: Any) -> tuple[list[int], int]:
            movies, _, total = await repo.list_movies(session, **filters)
            return [m.id for m in movies], total

        assert await ids(genres=["Horror"]) == ([4], 1)
        assert await ids(genres=["Comedy", "Sci-Fi"]) == ([1, 2, 3], 3)  # any of
        assert await ids(genres=["Romanc"]) == ([], 0)  # whole genre names only
        assert await ids(genres=[]) == ([1, 2, 3, 4, 5], 5)
        assert await ids(year_from=1995) == ([1, 2, 5], 3)
        assert await ids(year_to=1995) == ([1, 4], 2)
        assert await ids(year_from=1990, year_to=2005) == ([1, 2], 2)
        assert await ids(genres=["Comedy"], year_from=2000) == ([2], 1)

        movies, has_next, total = await repo.list_movies(
            session, genres=["Comedy", "Horror", "Sci-Fi"], first=2
        )
        assert ([m.id for m in movies], has_next, total) == ([1, 2], True, 4)
        movies, has_next, total = await repo.list_movies(
            session, genres=["Comedy", "Horror", "Sci-Fi"], first=2, after_id=2
        )
        assert ([m.id for m in movies], has_next, total) == ([3, 4], False, 4)


async def test_all_genres(sessions: async_sessionmaker[AsyncSession], loaded: InitResult) -> None:
    async with sessions() as session:
        assert await queries.all_genres(session) == [
            "Adventure",
            "Animation",
            "Children",
            "Comedy",
            "Fantasy",
            "Horror",
            "Romance",
            "Sci-Fi",
        ]


async def test_movie_and_user_lookups(
    sessions: async_sessionmaker[AsyncSession], loaded: InitResult
) -> None:
    async with sessions() as session:
        found = await queries.movies_by_ids(session, [4, 1, 99, 4])
        assert sorted(found) == [1, 4]
        assert found[4].title == "Shining, The"
        assert await queries.movies_by_ids(session, []) == {}
        movie = await repo.get_movie(session, 3)
        assert movie is not None
        assert movie.title == "Babylon 5"
        assert await repo.get_movie(session, 99) is None

        assert await queries.users_exist(session, [1, 3, 42]) == {1, 3}
        user = await repo.get_user(session, 2)
        assert user is not None
        assert user.created_at == datetime.fromtimestamp(1445714000, UTC)
        assert await repo.get_user(session, 42) is None


async def test_ratings_of_users(
    sessions: async_sessionmaker[AsyncSession], loaded: InitResult
) -> None:
    async with sessions() as session:
        assert await queries.ratings_of_users(session, [2, 1, 42]) == {
            2: {1: 3.0, 3: 4.5},
            1: {1: 4.0, 2: 5.0, 4: 3.0},
            42: {},
        }
        assert await queries.ratings_of_users(session, []) == {}


async def test_rating_stats(sessions: async_sessionmaker[AsyncSession], loaded: InitResult) -> None:
    async with sessions() as session:
        stats = await queries.rating_stats(session, [1, 2, 3, 4, 5, 99])
    counts = {movie_id: count for movie_id, (count, _) in stats.items()}
    means = {movie_id: mean for movie_id, (_, mean) in stats.items()}
    assert counts == {1: 3, 2: 2, 3: 2, 4: 2, 5: 0, 99: 0}
    assert means == pytest.approx({1: 4.0, 2: 4.5, 3: 3.5, 4: 1.75, 5: None, 99: None})


async def test_ratings_page(sessions: async_sessionmaker[AsyncSession], loaded: InitResult) -> None:
    async with sessions() as session:
        first, has_next, total = await repo.ratings_page(session, 3, first=3)
        assert ([r.movie_id for r in first], has_next, total) == ([1, 2, 3], True, 4)
        rest, has_next, total = await repo.ratings_page(session, 3, first=3, after_movie_id=3)
        assert ([(r.movie_id, r.rating) for r in rest], has_next, total) == ([(4, 0.5)], False, 4)
        assert await repo.ratings_page(session, 42) == ([], False, 0)


async def test_upsert_creates_the_user_then_updates_in_place(
    sessions: async_sessionmaker[AsyncSession], loaded: InitResult
) -> None:
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    async with write_session(sessions) as session:
        row = await queries.upsert_rating(session, 1000, 3, 4.5, t0)
    assert (row.user_id, row.movie_id, row.rating, row.rated_at) == (1000, 3, 4.5, t0)

    t1 = t0 + timedelta(hours=1)
    async with write_session(sessions) as session:
        row = await queries.upsert_rating(session, 1000, 3, 2.0, t1.astimezone())  # any zone
    assert (row.rating, row.rated_at) == (2.0, t1)

    async with sessions() as session:
        rows = list(await session.exec(select(Rating).where(col(Rating.user_id) == 1000)))
        assert [(r.movie_id, r.rating, r.rated_at) for r in rows] == [(3, 2.0, t1)]
        user = await repo.get_user(session, 1000)
        assert user is not None
        assert user.created_at == t0  # not moved by the re-rating
        count, mean = (await queries.rating_stats(session, [3]))[3]
        assert count == 3
        assert mean == pytest.approx(3.0)


async def test_upsert_overwrites_a_loaded_rating(
    sessions: async_sessionmaker[AsyncSession], loaded: InitResult
) -> None:
    async with write_session(sessions) as session:
        assert (await queries.get_rating(session, 1, 1)) is not None
        row = await queries.upsert_rating(session, 1, 1, 1.0, datetime.now(UTC))
        assert row.rating == 1.0
        stored = await queries.get_rating(session, 1, 1)
        assert stored is not None
        assert stored.rating == 1.0  # the identity map was refreshed
    async with sessions() as session:
        assert (await queries.ratings_of_users(session, [1]))[1][1] == 1.0
        count = (await session.exec(select(func.count()).select_from(Rating))).one()
        assert count == 9


async def test_upsert_needs_a_write_session(
    sessions: async_sessionmaker[AsyncSession], loaded: InitResult
) -> None:
    async with sessions() as session:
        with pytest.raises(RuntimeError, match="write_session"):
            await queries.upsert_rating(session, 1, 1, 3.0, datetime.now(UTC))


async def test_naive_datetimes_are_refused(
    sessions: async_sessionmaker[AsyncSession], loaded: InitResult
) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with write_session(sessions) as session:
            await queries.upsert_rating(session, 1, 1, 3.0, datetime(2024, 1, 1))


async def test_the_check_constraint_rejects_out_of_range_ratings(
    sessions: async_sessionmaker[AsyncSession], loaded: InitResult
) -> None:
    now = datetime.now(UTC)
    # Through the repository (which leaves range checks to the API and the database) ...
    with pytest.raises(IntegrityError, match="ck_ratings_rating_range"):
        async with write_session(sessions) as session:
            await queries.upsert_rating(session, 1, 5, 7.0, now)

    # ... and with raw SQL, bypassing every Python layer.
    async def raw_insert(rating: float) -> None:
        async with write_session(sessions) as session:
            connection = await session.connection()
            await connection.execute(
                text(
                    "INSERT INTO ratings (user_id, movie_id, rating, rated_at) "
                    "VALUES (1, 5, :rating, '2024-01-01 00:00:00')"
                ),
                {"rating": rating},
            )

    for bad in (7.0, 0.0, -1.0):
        with pytest.raises(IntegrityError, match="ck_ratings_rating_range"):
            await raw_insert(bad)
    async with sessions() as session:
        assert await queries.get_rating(session, 1, 5) is None
        assert (await queries.ratings_of_users(session, [1]))[1] == {1: 4.0, 2: 5.0, 4: 3.0}


async def test_foreign_keys_are_enforced(
    sessions: async_sessionmaker[AsyncSession], loaded: InitResult
) -> None:
    with pytest.raises(IntegrityError):
        async with write_session(sessions) as session:
            await queries.upsert_rating(session, 1, 999, 3.0, datetime.now(UTC))
    with pytest.raises(IntegrityError):
        async with write_session(sessions) as session:
            await session.exec(
                insert(Rating).values(
                    user_id=555, movie_id=1, rating=3.0, rated_at=datetime.now(UTC)
                )
            )
    async with sessions() as session:
        assert await queries.users_exist(session, [555]) == set()


async def test_movies_added_through_the_orm_are_searchable(
    db_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], loaded: InitResult
) -> None:
    async with write_session(sessions) as session:
        session.add(Movie(id=6, title="ÉCOLE Story", year=2020, genres="Drama"))
        session.add(User(id=9, created_at=datetime.now(UTC)))
    async with sessions() as session:
        movies, _, total = await repo.list_movies(session, search="école")
        assert ([m.id for m in movies], total) == ([6], 1)
        movies, _, total = await repo.list_movies(session, search="story")
        assert ([m.id for m in movies], total) == ([1, 6], 2)
