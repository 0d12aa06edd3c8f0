"""ORM versions of reads and writes production runs elsewhere, for tests: the reference the hot
paths' own SQL (:mod:`recsys_gql.db.hot_reads`) is held to, and seeding and checking helpers.
Functions that take a list of ids answer with one query per chunk of ids."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from recsys_gql.db.ids import chunks, unique
from recsys_gql.db.models import ApiToken, Movie, Rating, User
from recsys_gql.db.repository import _upsert
from recsys_gql.db.session import AsyncSession, is_write_session

_CHUNK = 5_000
"""Ids per ``IN (…)`` list; SQLite allows 32,766 bound parameters per statement."""


async def movies_by_ids(session: AsyncSession, ids: Iterable[int]) -> dict[int, Movie]:
    """The movies among ``ids`` that exist, by id (unknown ids are simply absent)."""
    wanted = unique(ids)
    found: dict[int, Movie] = {}
    for chunk in chunks(wanted, _CHUNK):
        rows = await session.exec(select(Movie).where(col(Movie.id).in_(chunk)))
        found.update((movie.id, movie) for movie in rows)
    return found


async def all_genres(session: AsyncSession) -> list[str]:
    """Every genre name used in the catalog, sorted."""
    combos = await session.exec(select(Movie.genres).distinct())
    names = {name for combo in combos for name in combo.split("|") if name}
    return sorted(names)


async def users_exist(session: AsyncSession, ids: Iterable[int]) -> set[int]:
    """The subset of ``ids`` that are known users."""
    wanted = unique(ids)
    found: set[int] = set()
    for chunk in chunks(wanted, _CHUNK):
        found.update(await session.exec(select(User.id).where(col(User.id).in_(chunk))))
    return found


async def ratings_of_users(
    session: AsyncSession, user_ids: Iterable[int]
) -> dict[int, dict[int, float]]:
    """Every current rating of each user as ``{user_id: {movie_id: rating}}``; a user without
    ratings (or unknown) maps to ``{}``. One query per 5,000 users."""
    wanted = unique(user_ids)
    result: dict[int, dict[int, float]] = {user_id: {} for user_id in wanted}
    for chunk in chunks(wanted, _CHUNK):
        rows = await session.exec(
            select(Rating.user_id, Rating.movie_id, Rating.rating).where(
                col(Rating.user_id).in_(chunk)
            )
        )
        for user_id, movie_id, rating in rows:
            result[user_id][movie_id] = float(rating)
    return result


async def get_rating(session: AsyncSession, user_id: int, movie_id: int) -> Rating | None:
    """``user_id``'s current rating of ``movie_id``, or ``None``."""
    return await session.get(Rating, (user_id, movie_id))


async def rating_stats(
    session: AsyncSession, movie_ids: Iterable[int]
) -> dict[int, tuple[int, float | None]]:
    """``{movie_id: (rating count, mean rating)}`` for every requested id; ``(0, None)`` for a
    movie nobody rated (or an unknown id). One grouped query per 5,000 ids."""
    wanted = unique(movie_ids)
    stats: dict[int, tuple[int, float | None]] = {movie_id: (0, None) for movie_id in wanted}
    for chunk in chunks(wanted, _CHUNK):
        rows = await session.exec(
            select(Rating.movie_id, func.count(), func.avg(Rating.rating))
            .where(col(Rating.movie_id).in_(chunk))
            .group_by(col(Rating.movie_id))
        )
        for movie_id, count, mean in rows:
            stats[movie_id] = (int(count), None if mean is None else float(mean))
    return stats


async def upsert_rating(
    target: AsyncSession | AsyncConnection,
    user_id: int,
    movie_id: int,
    rating: float,
    now: datetime,
) -> Rating:
    """Set ``user_id``'s rating of ``movie_id`` to ``rating`` at ``now`` (time-zone aware).

    Creates the user (``created_at = now``) if missing, then one
    ``INSERT … ON CONFLICT (user_id, movie_id) DO UPDATE`` — so a re-rating updates the row in
    place and concurrent writers can never produce two rows. Must run inside
    :func:`~recsys_gql.db.session.write_session` or ``write_connection``; the change is
    committed when that block exits. Returns the stored row (detached from any session).
    The statements are :func:`~recsys_gql.db.repository.upsert_ratings`'s.

    Both statements are Core statements on the transaction's connection: the ORM adds nothing
    here and cost most of a write's time.

    Range checking is the caller's job (the API validates first); the database's CHECK
    constraint and foreign keys reject anything that slips through with ``IntegrityError``
    (e.g. an unknown movie).
    """
    if not is_write_session(target):
        raise RuntimeError("upsert_rating must run inside write_session(...)")
    connection = target if isinstance(target, AsyncConnection) else await target.connection()
    row = Rating(user_id=user_id, movie_id=movie_id, rating=float(rating), rated_at=now)
    await _upsert(connection, [row])
    return row  # what the upsert stored: both its columns are set from these values


async def user_for_token(session: AsyncSession, token_sha256: str) -> int | None:
    """The user a live (not revoked) token belongs to, or ``None``."""
    statement = select(ApiToken.user_id).where(
        col(ApiToken.token_sha256) == token_sha256, col(ApiToken.revoked_at).is_(None)
    )
    return (await session.exec(statement)).first()
