"""Real databases for the persistence tests: every test that takes ``db_engine`` runs twice, on a
temporary SQLite *file* and on the local PostgreSQL (in a schema of its own, dropped after the
test). PostgreSQL is required under ``CI=true`` and skipped elsewhere when it cannot be reached.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from recsys_gql.db.loader import InitResult, init_database
from recsys_gql.db.session import AsyncSession, create_db_engine, session_factory

PG_URL = os.environ.get("RECSYS_GQL_TEST_POSTGRES_URL")
PG_CANDIDATES = (
    [PG_URL]
    if PG_URL
    else [f"postgresql+asyncpg://{user}@127.0.0.1:5432/test" for user in ("postgres", "root")]
)
_pg_probe: list[tuple[str | None, str]] = []
"""Cached (working URL or None, reason) so the probe runs once per session."""


async def _postgres_url() -> tuple[str | None, str]:
    if _pg_probe:
        return _pg_probe[0]
    reasons = []
    for url in PG_CANDIDATES:
        probe = create_async_engine(url, connect_args={"timeout": 5})
        try:
            async with probe.connect() as connection:
                await connection.execute(text("SELECT 1"))
            _pg_probe.append((url, ""))
            break
        except Exception as exc:
            reasons.append(f"{url}: {type(exc).__name__}: {exc}")
        finally:
            await probe.dispose()
    else:
        _pg_probe.append((None, "; ".join(reasons)))
    return _pg_probe[0]


async def _postgres_engine() -> AsyncIterator[AsyncEngine]:
    url, reason = await _postgres_url()
    if url is None:
        message = f"PostgreSQL is not reachable ({reason})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    schema = f"recsys_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url)
    try:
        async with admin.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        db_engine = create_db_engine(url, connect_args={"server_settings": {"search_path": schema}})
        try:
            yield db_engine
        finally:
            await db_engine.dispose()
            async with admin.begin() as connection:
                await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
async def db_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An empty database: a fresh SQLite file (in a folder that does not exist yet) or a fresh
    PostgreSQL schema."""
    if request.param == "sqlite":
        sqlite = create_db_engine(f"sqlite+aiosqlite:///{tmp_path / 'db' / 'recsys.db'}")
        try:
            yield sqlite
        finally:
            await sqlite.dispose()
    else:
        async for postgres in _postgres_engine():
            yield postgres


@pytest.fixture
def sessions(db_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(db_engine)


# --- a tiny MovieLens folder with known answers -------------------------------------------

MOVIES = [
    (1, "Toy Story (1995)", "Adventure|Animation|Children|Comedy|Fantasy"),
    (2, "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)", "Comedy|Romance"),
    (3, "Babylon 5", "Sci-Fi"),
    (4, "Shining, The (1980)", "Horror"),
    (5, "50% Off (2010)", "(no genres listed)"),
]
LINKS = [(1, "0114709", "862"), (2, "0211915", "194"), (3, "0105946", ""), (4, "0081505", "694")]
OVERVIEWS = [
    (1, 862, "Led by Woody, Andy's toys live happily in his room."),
    (2, 194, "  Amélie   secretly\norchestrates the lives of others. "),
    (4, 694, "A writer becomes the winter caretaker of a hotel."),
]
RATINGS = [
    (1, 1, 4.0, 964982703),
    (1, 2, 5.0, 964981247),
    (1, 4, 3.0, 964982224),
    (2, 1, 3.0, 1445714994),
    (2, 3, 4.5, 1445714000),
    (3, 1, 5.0, 1000000000),
    (3, 2, 4.0, 1000000100),
    (3, 3, 2.5, 1000000200),
    (3, 4, 0.5, 1000000300),
]


def write_tiny_dataset(folder: Path, ratings: list[tuple[int, int, float, int]] = RATINGS) -> Path:
    """Write a 5-movie, 3-user MovieLens-shaped folder (with links, overviews and tags)."""
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(MOVIES, columns=["movieId", "title", "genres"]).to_csv(
        folder / "movies.csv", index=False
    )
    pd.DataFrame(LINKS, columns=["movieId", "imdbId", "tmdbId"]).to_csv(
        folder / "links.csv", index=False
    )
    pd.DataFrame(OVERVIEWS, columns=["movieId", "tmdbId", "overview"]).to_csv(
        folder / "overviews.csv", index=False
    )
    pd.DataFrame(ratings, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(
        folder / "ratings.csv", index=False
    )
    pd.DataFrame(
        [(1, 1, "pixar", 964982703)], columns=["userId", "movieId", "tag", "timestamp"]
    ).to_csv(folder / "tags.csv", index=False)
    return folder


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    return write_tiny_dataset(tmp_path / "tiny")


@pytest.fixture
async def loaded(db_engine: AsyncEngine, tiny_dir: Path) -> InitResult:
    """``db_engine`` with the tiny dataset loaded."""
    return await init_database(db_engine, tiny_dir)
