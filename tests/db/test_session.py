"""Engine set-up: SQLite pragmas, BEGIN IMMEDIATE for writes, folders, URLs."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from recsys_gql.db.models import User
from recsys_gql.db.repository import create_schema, get_user
from recsys_gql.db.session import (
    BUSY_TIMEOUT_MS,
    Database,
    create_db_engine,
    session_factory,
    write_connection,
    write_session,
)
from recsys_gql.settings import Settings
from tests.db.conftest import _postgres_engine


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_db_engine(f"sqlite+aiosqlite:///{tmp_path / 'a' / 'b' / 'recsys.db'}")
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_sqlite_pragmas_on_every_connection(sqlite_engine: AsyncEngine) -> None:
    # Two connections at once, so both a first and a second pooled connection are checked.
    async with sqlite_engine.connect() as first, sqlite_engine.connect() as second:
        for connection in (first, second):
            pragmas = {
                name: (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
            }
            assert pragmas == {
                "journal_mode": "wal",
                "busy_timeout": BUSY_TIMEOUT_MS,
                "synchronous": 1,  # NORMAL
                "foreign_keys": 1,
            }


async def test_sqlite_file_folder_is_created(tmp_path: Path, sqlite_engine: AsyncEngine) -> None:
    await create_schema(sqlite_engine)
    assert (tmp_path / "a" / "b" / "recsys.db").is_file()


async def test_write_transactions_take_the_write_lock_at_begin(
    tmp_path: Path, sqlite_engine: AsyncEngine
) -> None:
    """A write session holds SQLite's write lock from its first statement (BEGIN IMMEDIATE),
    before it has written anything; a read session does not."""
    await create_schema(sqlite_engine)
    other = sqlite3.connect(tmp_path / "a" / "b" / "recsys.db", timeout=0, isolation_level=None)
    try:
        sessions = session_factory(sqlite_engine)
        async with write_session(sessions) as session:
            await session.connection()  # BEGIN IMMEDIATE, nothing written yet
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again after the commit
        other.execute("ROLLBACK")

        async with sessions() as session:
            await (await session.connection()).execute(text("SELECT count(*) FROM movies"))
            other.execute("BEGIN IMMEDIATE")  # a reader does not block writers (WAL)
            other.execute("ROLLBACK")
    finally:
        other.close()


async def test_write_connection_commits_and_rolls_back(
    db_engine: AsyncEngine,
) -> None:
    await create_schema(db_engine)
    async with write_connection(db_engine) as connection:
        await connection.execute(
            text("INSERT INTO users (id, created_at) VALUES (1, '2024-01-01 00:00:00')")
        )

    async def insert_then_fail() -> None:
        async with write_connection(db_engine) as connection:
            await connection.execute(
                text("INSERT INTO users (id, created_at) VALUES (2, '2024-01-01 00:00:00')")
            )
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await insert_then_fail()
    async with db_engine.connect() as connection:
        ids = (await connection.execute(text("SELECT id FROM users ORDER BY id"))).scalars()
        assert list(ids) == [1]


async def test_schema_has_the_expected_keys_and_indexes(db_engine: AsyncEngine) -> None:
    await create_schema(db_engine)
    await create_schema(db_engine)  # idempotent

    def describe(sync_connection: object) -> dict[str, object]:
        inspector = inspect(sync_connection)
        return {
            "tables": sorted(inspector.get_table_names()),
            "ratings_pk": inspector.get_pk_constraint("ratings")["constrained_columns"],
            "ratings_indexes": {
                tuple(ix["column_names"]) for ix in inspector.get_indexes("ratings")
            },
            "movies_indexes": {tuple(ix["column_names"]) for ix in inspector.get_indexes("movies")},
            "checks": [c["name"] for c in inspector.get_check_constraints("ratings")],
            "fks": sorted(fk["referred_table"] for fk in inspector.get_foreign_keys("ratings")),
        }

    async with db_engine.connect() as connection:
        schema = await connection.run_sync(describe)
    assert schema["tables"] == [
        "alembic_version",  # the schema revision (recsys_gql.db.migrate)
        "api_tokens",
        "dataset_info",
        "hidden_movies",  # hideMovie (migration 0003)
        "movies",
        "ratings",
        "users",
    ]
    assert schema["ratings_pk"] == ["user_id", "movie_id"]  # also the index on user_id
    # by movie, covering the rating (rating statistics read the index alone)
    assert ("movie_id", "rating") in schema["ratings_indexes"]  # type: ignore[operator]
    assert ("title_folded",) in schema["movies_indexes"]  # type: ignore[operator]
    assert schema["checks"] == ["ck_ratings_rating_range"]
    assert schema["fks"] == ["movies", "users"]


def test_unsupported_urls_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        create_db_engine("mysql+aiomysql://user:secret@host/db")


def test_settings_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECSYS_GQL_DATABASE_URL", raising=False)
    assert Settings().database_url == "sqlite+aiosqlite:///data/recsys.db"
    monkeypatch.setenv("RECSYS_GQL_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    assert Settings().database_url == "postgresql+asyncpg://u@h/db"


async def test_database_bundles_engine_and_sessions(tmp_path: Path) -> None:
    database = Database.open(f"sqlite+aiosqlite:///{tmp_path / 'recsys.db'}")
    try:
        await create_schema(database.engine)
        async with database.write() as session:
            session.add(User(id=1, created_at=datetime.now(UTC)))
        async with database.sessions() as session:
            assert await get_user(session, 1) is not None
    finally:
        await database.dispose()


@pytest.fixture
async def postgres_engine() -> AsyncIterator[AsyncEngine]:
    async for engine in _postgres_engine():
        yield engine


async def test_a_postgres_connection_closed_by_the_server_is_replaced_unseen(
    postgres_engine: AsyncEngine,
) -> None:
    async with postgres_engine.connect() as connection:
        backend = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    assert postgres_engine.pool.checkedin() == 1  # type: ignore[attr-defined]
    admin = create_async_engine(str(postgres_engine.url.render_as_string(hide_password=False)))
    try:
        async with admin.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend})
    finally:
        await admin.dispose()
    await asyncio.sleep(0.2)  # the event loop reads the server's goodbye
    async with postgres_engine.connect() as connection:  # not the dead one: a new connection
        now = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    assert now != backend


def test_postgres_pool_size_is_configurable() -> None:
    engine = create_db_engine(
        "postgresql+asyncpg://nobody@127.0.0.1:1/none", pool_size=3, max_overflow=4
    )
    assert engine.pool.size() == 3  # type: ignore[attr-defined]
    assert engine.pool._max_overflow == 4  # type: ignore[attr-defined]
