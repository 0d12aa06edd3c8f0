"""Load a MovieLens-shaped folder into the database: once, atomically, and never silently over
ratings that users wrote.

The folder holds ``movies.csv`` and ``ratings.csv`` and optionally ``links.csv`` (tmdb/imdb
ids) and ``overviews.csv`` (``movieId,…,overview``). :func:`init_database`:

1. fingerprints the folder — the sha256 of every input file and one digest over all of them,
   computed exactly as training does for the artifact manifest (``data.sha256``), so the
   server can check that the catalog and the artifacts were built from the same data;
2. brings the schema to the code's newest revision (:mod:`recsys_gql.db.migrate`; a database
   made before migrations is recognised and stamped, never recreated);
3. does nothing if the stored :class:`~recsys_gql.db.models.DatasetInfo` has that fingerprint;
4. loads an empty database in **one transaction** (bulk inserts in chunks): movies (titles
   split into title and year; links; overviews), users (``created_at`` = their first rating)
   and ratings (Unix timestamps → aware UTC ``rated_at``), then records the fingerprint.

If the database already holds *another* dataset (or rows without a fingerprint) loading would
delete ratings written through the API, so :class:`DatasetMismatch` is raised unless
``force=True``, which deletes every movie, user and rating and loads the new data — still in
one transaction, so a failure leaves the old contents untouched.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from sqlalchemy import delete, func, insert
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col, select

from recsys_gql.db.migrate import MigrationResult
from recsys_gql.db.models import DatasetInfo, Movie, Rating, User, fold_title
from recsys_gql.db.repository import create_schema
from recsys_gql.db.session import AsyncSession, create_db_engine, session_factory, write_session
from recsys_gql.errors import DataValidationError, RecsysError
from recsys_gql.movielens import MovieLensData, fingerprint, load_movielens

__all__ = [
    "DatasetMismatch",
    "InitResult",
    "MovieLensRows",
    "dataset_fingerprint",
    "init_database",
    "read_movielens",
]

INSERT_CHUNK = 10_000
MAX_ID = 2**31 - 1
"""Ids are stored as 32-bit INTEGER columns."""
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")
_LOAD_LOCK_KEY = 0x7265637379
"""PostgreSQL advisory lock key held while loading, so concurrent inits cannot interleave."""


class DatasetMismatch(RecsysError):
    """The database holds a different dataset than the folder being loaded."""

    code = "DATASET_MISMATCH"


@dataclass(frozen=True)
class InitResult:
    """What :func:`init_database` did.

    ``status`` is ``"loaded"`` (empty database filled), ``"replaced"`` (another dataset
    replaced under ``force=True``) or ``"unchanged"`` (this dataset was already loaded). The
    counts are those of the dataset (for ``"unchanged"``, as recorded when it was loaded).
    """

    status: Literal["loaded", "replaced", "unchanged"]
    fingerprint: str
    movies: int
    users: int
    ratings: int
    seconds: float
    migration: MigrationResult | None = None
    """What the schema migration did (revisions before and after)."""

    @property
    def changed(self) -> bool:
        """Whether this call wrote anything."""
        return self.status != "unchanged"


@dataclass(frozen=True)
class MovieLensRows:
    """A folder parsed into rows ready for bulk insertion (plain Python values only)."""

    movies: list[dict[str, Any]]
    users: list[dict[str, Any]]
    ratings: list[dict[str, Any]]


# --- reading -------------------------------------------------------------------------------


def dataset_fingerprint(folder: Path) -> tuple[str, dict[str, str]]:
    """``(overall sha256, {file name: sha256})``: training's manifest fingerprint of ``folder``."""
    digest = fingerprint(folder)
    return digest.sha256, dict(digest.files)


def _split_title(title: str) -> tuple[str, int | None]:
    """``"Toy Story (1995)"`` → ``("Toy Story", 1995)``; a title without a trailing year is
    kept whole (``"Babylon 5"`` → ``("Babylon 5", None)``)."""
    match = _TITLE_YEAR.match(title)
    if match is None or not match["title"]:
        return title, None
    return match["title"], int(match["year"])


def _check_id_range(file: str, frame: pd.DataFrame, column: str) -> None:
    values = frame[column].dropna()
    too_big = values[(values < 0) | (values > MAX_ID)]
    if not too_big.empty:
        raise DataValidationError(
            file, f"{column} {int(too_big.iloc[0])} does not fit a 32-bit id column"
        )


def _movie_rows(data: MovieLensData) -> list[dict[str, Any]]:
    movies = data.movies
    _check_id_range("movies.csv", movies, "movieId")
    tmdb: dict[int, int | None] = {}
    imdb: dict[int, str | None] = {}
    if data.links is not None:
        _check_id_range("links.csv", data.links, "tmdbId")
        for movie_id, imdb_id, tmdb_id in data.links.itertuples(index=False):
            tmdb[int(movie_id)] = None if pd.isna(tmdb_id) else int(tmdb_id)
            imdb[int(movie_id)] = imdb_id or None
    overviews: dict[int, str] = {}
    if data.overviews is not None:
        overviews = dict(
            zip(
                (int(i) for i in data.overviews["movieId"]),
                data.overviews["overview"].fillna(""),
                strict=True,
            )
        )
    rows: list[dict[str, Any]] = []
    for movie_id, full_title, genres in zip(
        movies["movieId"].tolist(), movies["title"].tolist(), movies["genres"].tolist(), strict=True
    ):
        title, year = _split_title(full_title)
        rows.append(
            {
                "id": int(movie_id),
                "title": title,
                "title_folded": fold_title(title),
                "year": year,
                "genres": genres,
                "overview": overviews.get(int(movie_id), ""),
                "tmdb_id": tmdb.get(int(movie_id)),
                "imdb_id": imdb.get(int(movie_id)),
            }
        )
    return rows


def _rating_rows(data: MovieLensData) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ratings = data.ratings
    _check_id_range("ratings.csv", ratings, "userId")
    user_list = [int(u) for u in ratings["userId"].tolist()]
    stamp_list = [int(t) for t in ratings["timestamp"].tolist()]
    first_seen: dict[int, int] = {}
    for user_id, stamp in zip(user_list, stamp_list, strict=True):
        if stamp < first_seen.get(user_id, stamp + 1):
            first_seen[user_id] = stamp
    when = {stamp: datetime.fromtimestamp(stamp, UTC) for stamp in set(stamp_list)}
    rating_rows = [
        {"user_id": u, "movie_id": int(m), "rating": float(r), "rated_at": when[t]}
        for u, m, r, t in zip(
            user_list, ratings["movieId"].tolist(), ratings["rating"].tolist(), stamp_list,
            strict=True,
        )
    ]  # fmt: skip
    user_rows = [
        {"id": user_id, "created_at": when[stamp]} for user_id, stamp in sorted(first_seen.items())
    ]
    return user_rows, rating_rows


def read_movielens(folder: Path) -> MovieLensRows:
    """Read ``folder`` with the shared validator (:func:`recsys_gql.movielens.load_movielens`,
    which names the file, line and problem of any bad input) and lay it out as rows."""
    data = load_movielens(folder)
    users, ratings = _rating_rows(data)
    return MovieLensRows(movies=_movie_rows(data), users=users, ratings=ratings)


# --- writing -------------------------------------------------------------------------------


async def _bulk_insert(connection: AsyncConnection, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), INSERT_CHUNK):
        await connection.execute(insert(model), rows[start : start + INSERT_CHUNK])


async def _count(session: AsyncSession, model: Any) -> int:
    return int((await session.exec(select(func.count()).select_from(model))).one())


async def _ratings_since(session: AsyncSession, moment: datetime) -> int:
    since = select(func.count()).select_from(Rating).where(col(Rating.rated_at) >= moment)
    return int((await session.exec(since)).one())


async def _stored_info(engine: AsyncEngine) -> DatasetInfo | None:
    async with session_factory(engine)() as session:
        return await session.get(DatasetInfo, 1)


def _mismatch_message(
    info: DatasetInfo | None, held: tuple[int, int, int], since_load: int, folder: Path, new: str
) -> str:
    movies, users, ratings = held
    what = "data without a dataset fingerprint"
    if info is not None:
        when = f"{info.loaded_at:%Y-%m-%d %H:%M} UTC"
        what = f"dataset {info.sha256[:12]}… (loaded from {info.source} at {when})"
    written = f", {since_load} of them written after the load" if info is not None else ""
    return (
        f"the database holds {what}: {movies} movies, {users} users, {ratings} ratings"
        f"{written}. {folder} is a different dataset ({new[:12]}…); loading it would delete "
        "all of them. Pass force=True (recsys-gql db init --force) to replace the database "
        "contents."
    )


async def init_database(
    url_or_engine: str | URL | AsyncEngine,
    data_dir: Path,
    *,
    force: bool = False,
) -> InitResult:
    """Create the schema and load ``data_dir`` unless this exact dataset is already loaded.

    Idempotent: a second call with the same files does nothing. Loading is one transaction.
    A database holding a different dataset raises :class:`DatasetMismatch` (nothing is
    changed) unless ``force`` is true, which replaces every movie, user and rating — including
    ratings written through the API (``force`` changes nothing when the same dataset is
    already loaded). Bad input raises :class:`DataValidationError` before any write. An engine
    passed in is left open; one created from a URL is disposed of.
    """
    started = time.perf_counter()
    if isinstance(url_or_engine, AsyncEngine):
        engine, owned = url_or_engine, False
    else:
        engine, owned = create_db_engine(url_or_engine), True
    try:
        digest, files = await asyncio.to_thread(dataset_fingerprint, data_dir)
        migration = await create_schema(engine)

        def unchanged(info: DatasetInfo) -> InitResult:
            return InitResult(
                "unchanged",
                digest,
                info.movies,
                info.users,
                info.ratings,
                time.perf_counter() - started,
                migration,
            )

        stored = await _stored_info(engine)
        if stored is not None and stored.sha256 == digest:
            return unchanged(stored)
        rows = await asyncio.to_thread(read_movielens, data_dir)

        async with write_session(engine) as session:
            if session.get_bind().dialect.name == "postgresql":
                await session.exec(select(func.pg_advisory_xact_lock(_LOAD_LOCK_KEY)))
            # Decide again inside the write transaction: another loader may have run meanwhile.
            info = await session.get(DatasetInfo, 1)
            if info is not None and info.sha256 == digest:
                return unchanged(info)
            held = (
                await _count(session, Movie),
                await _count(session, User),
                await _count(session, Rating),
            )
            status: Literal["loaded", "replaced"] = "loaded"
            if info is not None or any(held):
                if not force:
                    since = 0 if info is None else await _ratings_since(session, info.loaded_at)
                    raise DatasetMismatch(_mismatch_message(info, held, since, data_dir, digest))
                status = "replaced"
            connection = await session.connection()
            if status == "replaced":
                for model in (Rating, User, Movie, DatasetInfo):
                    await connection.execute(delete(model))
            await _bulk_insert(connection, Movie, rows.movies)
            await _bulk_insert(connection, User, rows.users)
            await _bulk_insert(connection, Rating, rows.ratings)
            await connection.execute(
                insert(DatasetInfo),
                [
                    {
                        "id": 1,
                        "sha256": digest,
                        "files": files,
                        "source": str(data_dir.resolve()),
                        "loaded_at": datetime.now(UTC),
                        "movies": len(rows.movies),
                        "users": len(rows.users),
                        "ratings": len(rows.ratings),
                    }
                ],
            )
        return InitResult(
            status,
            digest,
            len(rows.movies),
            len(rows.users),
            len(rows.ratings),
            time.perf_counter() - started,
            migration,
        )
    finally:
        if owned:
            await engine.dispose()
