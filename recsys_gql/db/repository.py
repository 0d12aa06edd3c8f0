"""Async ORM queries over the catalog, the ratings, users and tokens: the server's reads and
writes that are not on every request's hot path (start-up's catalog, listings, sign-up,
tokens) and the rating upsert the group-committing writer runs.

The hot paths run their own SQL beside this module: a user's ratings, rating statistics and a
token's user in :mod:`recsys_gql.db.hot_reads`, and ``rateMovie``'s upsert on a SQLite file in
:mod:`recsys_gql.db.inline_writes` (the same statements as :func:`upsert_ratings`).

Read functions take any session (from :func:`recsys_gql.db.session.session_factory`). Write
functions must run inside :func:`recsys_gql.db.session.write_session`, which owns the
transaction: their changes are committed when that block exits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal, or_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col, select

from recsys_gql.db.migrate import MigrationResult, upgrade
from recsys_gql.db.models import (
    ApiToken,
    Movie,
    MovieRecord,
    Rating,
    RatingRecord,
    User,
    fold_title,
)
from recsys_gql.db.session import AsyncSession, is_write_session

__all__ = [
    "add_token",
    "all_movies",
    "create_schema",
    "create_user",
    "get_movie",
    "get_user",
    "list_movies",
    "ratings_page",
    "revoke_token",
    "upsert_ratings",
]

_CHUNK = 5_000
"""Ids per ``IN (…)`` list; SQLite allows 32,766 bound parameters per statement."""


def _check_page_size(first: int) -> None:
    if first < 0:
        raise ValueError(f"first must be >= 0, got {first}")


async def create_schema(engine: AsyncEngine) -> MigrationResult:
    """Bring the schema to the code's newest revision (:func:`recsys_gql.db.migrate.upgrade`:
    created in an empty database, stamped and upgraded in one made before migrations)."""
    return await upgrade(engine)


# --- movies -------------------------------------------------------------------------------


async def get_movie(session: AsyncSession, movie_id: int) -> Movie | None:
    """The movie with ``movie_id``, or ``None``."""
    return await session.get(Movie, movie_id)


async def all_movies(session: AsyncSession) -> dict[int, MovieRecord]:
    """The whole catalog by id, as plain records (loaded once at start-up; it is read-only
    while serving)."""
    return {movie.id: MovieRecord.of(movie) for movie in await session.exec(select(Movie))}


def _movie_filters(
    search: str | None,
    genres: Sequence[str] | None,
    year_from: int | None,
    year_to: int | None,
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if search is not None and search.strip():
        needle = fold_title(search.strip())
        filters.append(col(Movie.title_folded).contains(needle, autoescape=True))
    if genres:
        # Genres are stored "A|B|C": wrap in bars so "|A|" matches whole names only.
        bracketed = literal("|") + col(Movie.genres) + literal("|")
        filters.append(or_(*(bracketed.contains(f"|{g}|", autoescape=True) for g in genres)))
    if year_from is not None:
        filters.append(col(Movie.year) >= year_from)
    if year_to is not None:
        filters.append(col(Movie.year) <= year_to)
    return filters


async def list_movies(
    session: AsyncSession,
    *,
    search: str | None = None,
    genres: Sequence[str] | None = None,
    year_from: int | None = None,
    year_to: int | None = None,
    first: int = 20,
    after_id: int | None = None,
) -> tuple[list[Movie], bool, int]:
    """One page of the catalog ordered by id, with keyset pagination.

    - ``search``: case-insensitive substring of the title (Unicode case folding; ``%`` and
      ``_`` are literal). Blank means no filter.
    - ``genres``: movies having *any* of these genres (exact names such as ``Sci-Fi``). ``None``
      or empty means no filter.
    - ``year_from`` / ``year_to``: inclusive bounds; movies without a year never match a bound.
    - ``first``: page size (>= 0); ``after_id``: the last id of the previous page.

    Returns ``(movies, has_next, total_count)`` where ``total_count`` counts every movie that
    passes the filters, independent of the page.

    A substring search scans ``title_folded`` (well under a millisecond for ~10k movies); its
    index serves ordering and prefix matches. For a much larger catalog on PostgreSQL a
    ``pg_trgm`` GIN index would be the next step.
    """
    _check_page_size(first)
    filters = _movie_filters(search, genres, year_from, year_to)
    page = select(Movie).where(*filters)
    if after_id is not None:
        page = page.where(col(Movie.id) > after_id)
    rows = list(await session.exec(page.order_by(col(Movie.id)).limit(first + 1)))
    total = (await session.exec(select(func.count()).select_from(Movie).where(*filters))).one()
    return rows[:first], len(rows) > first, int(total)


# --- users and ratings --------------------------------------------------------------------


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    """The user with ``user_id``, or ``None``."""
    return await session.get(User, user_id)


async def ratings_page(
    session: AsyncSession,
    user_id: int,
    first: int = 20,
    after_movie_id: int | None = None,
) -> tuple[list[Rating], bool, int]:
    """One page of a user's ratings ordered by movie id (keyset: ``after_movie_id`` is the last
    movie id of the previous page). Returns ``(ratings, has_next, total_count)``."""
    _check_page_size(first)
    page = select(Rating).where(col(Rating.user_id) == user_id)
    if after_movie_id is not None:
        page = page.where(col(Rating.movie_id) > after_movie_id)
    rows = list(await session.exec(page.order_by(col(Rating.movie_id)).limit(first + 1)))
    total = (
        await session.exec(
            select(func.count()).select_from(Rating).where(col(Rating.user_id) == user_id)
        )
    ).one()
    return rows[:first], len(rows) > first, int(total)


def _dialect_insert(name: str) -> Any:
    if name == "sqlite":
        return sqlite_insert
    if name == "postgresql":
        return postgresql_insert
    raise NotImplementedError(f"upsert is not implemented for {name}")


async def upsert_ratings(
    connection: AsyncConnection, rows: Sequence[Rating | RatingRecord]
) -> None:
    """Store ratings in order (a later rating of the same movie by the same user wins), with
    two ``executemany`` statements: insert each missing user (``created_at``: its rating time
    in the batch), then ``INSERT … ON CONFLICT (user_id, movie_id) DO UPDATE``, so a re-rating
    updates the row in place and concurrent writers never make two rows. Must run inside
    ``write_connection``; range checks are the caller's (the database's CHECK constraint and
    foreign keys reject what slips through with ``IntegrityError``)."""
    if not is_write_session(connection):
        raise RuntimeError("upsert_ratings must run inside write_connection(...)")
    if rows:
        await _upsert(connection, rows)


async def _upsert(connection: AsyncConnection, rows: Sequence[Rating | RatingRecord]) -> None:
    insert = _dialect_insert(connection.dialect.name)
    users = {row.user_id: row.rated_at for row in rows}
    await connection.execute(
        insert(User).on_conflict_do_nothing(index_elements=[col(User.id)]),
        [{"id": user_id, "created_at": at} for user_id, at in users.items()],
    )
    statement = insert(Rating)
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=[col(Rating.user_id), col(Rating.movie_id)],
            set_={"rating": statement.excluded.rating, "rated_at": statement.excluded.rated_at},
        ),
        [
            {
                "user_id": row.user_id,
                "movie_id": row.movie_id,
                "rating": float(row.rating),
                "rated_at": row.rated_at,
            }
            for row in rows
        ],
    )


# --- users and tokens ----------------------------------------------------------------------


async def create_user(session: AsyncSession, now: datetime) -> User:
    """A new user with the next free id. Must run inside ``write_session`` (on SQLite the write
    lock makes ``max + 1`` safe; on PostgreSQL a concurrent duplicate fails the primary key and
    the caller's transaction, which is retried by :func:`recsys_gql.api.services.sign_up`)."""
    if not is_write_session(session):
        raise RuntimeError("create_user must run inside write_session(...)")
    highest = (await session.exec(select(func.max(User.id)))).one()
    user = User(id=int(highest or 0) + 1, created_at=now)
    session.add(user)
    await session.flush()
    return user


async def add_token(session: AsyncSession, user_id: int, token_sha256: str, now: datetime) -> None:
    """Store a token's digest for ``user_id`` (inside ``write_session``)."""
    if not is_write_session(session):
        raise RuntimeError("add_token must run inside write_session(...)")
    session.add(ApiToken(user_id=user_id, token_sha256=token_sha256, created_at=now))
    await session.flush()


async def revoke_token(session: AsyncSession, token_sha256: str, now: datetime) -> bool:
    """Revoke a token (inside ``write_session``); ``False`` when no live token matches."""
    if not is_write_session(session):
        raise RuntimeError("revoke_token must run inside write_session(...)")
    token = (
        await session.exec(
            select(ApiToken).where(
                col(ApiToken.token_sha256) == token_sha256, col(ApiToken.revoked_at).is_(None)
            )
        )
    ).first()
    if token is None:
        return False
    token.revoked_at = now
    session.add(token)
    await session.flush()
    return True
