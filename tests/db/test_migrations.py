"""Schema migrations on SQLite and PostgreSQL: the revisions equal the models, revision 0001
equals what ``create_all`` made before migrations, such a database is stamped (never
recreated) with every rating kept, and the newest revision goes down and up again."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from recsys_gql.db import feedback, loader
from recsys_gql.db import repository as repo
from recsys_gql.db.loader import init_database
from recsys_gql.db.migrate import (
    BASELINE,
    SchemaNotRecognised,
    downgrade,
    head_revision,
    schema_state,
    upgrade,
)
from recsys_gql.db.models import Rating, RatingRecord
from recsys_gql.db.session import create_db_engine, write_connection, write_session
from recsys_gql.readiness import schema_problem
from tests.conftest import REPO
from tests.db.conftest import _postgres_engine

SCHEMAS = Path(__file__).with_name("schemas")
APP_TABLES = ["api_tokens", "dataset_info", "movies", "ratings", "users"]


def create_all_ddl(engine: AsyncEngine) -> list[str]:
    """The statements ``create_all`` ran at commit 4b55700, before migrations."""
    name = "sqlite" if engine.dialect.name == "sqlite" else "postgresql"
    script = (SCHEMAS / f"create_all_4b55700.{name}.sql").read_text(encoding="utf-8")
    lines = [line for line in script.splitlines() if not line.startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


async def make_pre_migration_database(engine: AsyncEngine) -> None:
    async with write_connection(engine) as connection:
        for statement in create_all_ddl(engine):
            await connection.exec_driver_sql(statement)


def differences(connection: Connection, metadata: MetaData) -> list[Any]:
    """Alembic autogenerate's comparison of the live schema with ``metadata``."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def reflect(connection: Connection) -> MetaData:
    metadata = MetaData()
    metadata.reflect(bind=connection, only=APP_TABLES)
    return metadata


def check_constraints(connection: Connection) -> dict[str, list[tuple[str, str]]]:
    inspector = inspect(connection)
    return {
        table: sorted(
            (str(check["name"]), " ".join(str(check["sqltext"]).split()))
            for check in inspector.get_check_constraints(table)
        )
        for table in APP_TABLES
    }


async def all_ratings(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT * FROM ratings ORDER BY user_id, movie_id"))
        return [tuple(row) for row in rows]


@pytest.fixture
async def other_engine(db_engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A second empty database of the same backend as ``db_engine``."""
    if db_engine.dialect.name == "sqlite":
        engine = create_db_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
        try:
            yield engine
        finally:
            await engine.dispose()
    else:
        async for engine in _postgres_engine():
            yield engine


async def test_the_newest_revision_is_exactly_the_models(db_engine: AsyncEngine) -> None:
    result = await upgrade(db_engine)
    assert (result.before, result.after, result.stamped) == (None, head_revision(), False)
    async with db_engine.connect() as connection:
        assert await connection.run_sync(differences, SQLModel.metadata) == []
    assert (await upgrade(db_engine)).changed is False  # a second upgrade does nothing


async def test_revision_0001_is_the_schema_create_all_made(
    db_engine: AsyncEngine, other_engine: AsyncEngine
) -> None:
    await make_pre_migration_database(other_engine)
    await upgrade(db_engine, BASELINE)
    async with other_engine.connect() as old, db_engine.connect() as migrated:
        made_by_create_all = await old.run_sync(reflect)
        assert await migrated.run_sync(differences, made_by_create_all) == []
        # autogenerate does not compare CHECK constraints: compare them directly
        checks = await old.run_sync(check_constraints)
        assert checks["ratings"]
        assert checks["dataset_info"]
        assert await migrated.run_sync(check_constraints) == checks


async def test_a_create_all_database_is_stamped_and_upgraded_keeping_every_rating(
    db_engine: AsyncEngine, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before migrations: `db init` made the tables with create_all and loaded the data ...
    await make_pre_migration_database(db_engine)

    async def tables_already_made(engine: AsyncEngine) -> None:
        return None

    with monkeypatch.context() as patch:
        patch.setattr(loader, "create_schema", tables_already_made)
        assert (await init_database(db_engine, tiny_dir)).status == "loaded"
    # ... and users rated through the API.
    async with write_connection(db_engine) as connection:
        await repo.upsert_ratings(connection, [RatingRecord(1, 3, 4.5, datetime.now(UTC))])
    before = await all_ratings(db_engine)
    assert len(before) == 10
    state = await schema_state(db_engine)
    assert (state.revision, state.tables) == (None, frozenset(APP_TABLES))

    again = await init_database(db_engine, tiny_dir)  # what `db init` does today

    assert again.status == "unchanged"
    assert again.migration is not None
    assert again.migration.stamped
    assert (again.migration.before, again.migration.after) == (None, head_revision())
    assert await all_ratings(db_engine) == before  # none lost, none changed
    async with db_engine.connect() as connection:
        assert await connection.run_sync(differences, SQLModel.metadata) == []


async def test_the_revisions_go_down_to_the_baseline_and_up_keeping_every_rating(
    db_engine: AsyncEngine, tiny_dir: Path
) -> None:
    await init_database(db_engine, tiny_dir)
    before = await all_ratings(db_engine)
    head = head_revision()

    down = await downgrade(db_engine, BASELINE)

    assert (down.before, down.after) == (head, BASELINE)
    assert (await schema_state(db_engine)).revision == BASELINE
    async with db_engine.connect() as connection:
        changes = await connection.run_sync(differences, SQLModel.metadata)
    # 0001 is the models without 0002's covering index (with the index it replaced) and
    # without 0003's hidden_movies
    assert {(change[0], change[1].name) for change in changes} == {
        ("add_index", "ix_ratings_movie_id_rating"),
        ("remove_index", "ix_ratings_movie_id"),
        ("add_table", "hidden_movies"),
    }
    assert await all_ratings(db_engine) == before

    up = await upgrade(db_engine)

    assert (up.before, up.after) == (BASELINE, head)
    async with db_engine.connect() as connection:
        assert await connection.run_sync(differences, SQLModel.metadata) == []
    assert await all_ratings(db_engine) == before


async def test_revision_0003_adds_hidden_movies_and_its_downgrade_drops_only_them(
    db_engine: AsyncEngine, tiny_dir: Path
) -> None:
    await init_database(db_engine, tiny_dir)
    assert head_revision() == "0003"
    async with write_session(db_engine) as session:
        assert await feedback.hide(session, 1, 3, datetime.now(UTC))
    before = await all_ratings(db_engine)

    down = await downgrade(db_engine, "-1")

    assert (down.before, down.after) == ("0003", "0002")
    async with db_engine.connect() as connection:
        tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        changes = await connection.run_sync(differences, SQLModel.metadata)
    assert "hidden_movies" not in tables
    assert [(change[0], change[1].name) for change in changes] == [("add_table", "hidden_movies")]
    assert await all_ratings(db_engine) == before

    up = await upgrade(db_engine)

    assert (up.before, up.after) == ("0002", "0003")
    async with db_engine.connect() as connection:
        assert await connection.run_sync(differences, SQLModel.metadata) == []
        hidden = (await connection.execute(text("SELECT COUNT(*) FROM hidden_movies"))).scalar()
    assert hidden == 0  # the downgrade dropped the hides; the upgrade starts empty
    assert await all_ratings(db_engine) == before


async def test_rating_statistics_are_read_from_the_covering_index(
    db_engine: AsyncEngine, tiny_dir: Path
) -> None:
    """What revision 0002 is for: SQLite answers the statistics from the index alone."""
    await init_database(db_engine, tiny_dir)
    if db_engine.dialect.name != "sqlite":
        async with db_engine.connect() as connection:
            # PostgreSQL's planner picks a plan by table size; the index exists for it to use
            indexes = await connection.run_sync(lambda c: inspect(c).get_indexes("ratings"))
        assert ["movie_id", "rating"] in [index["column_names"] for index in indexes]
        return
    statistics = (
        "EXPLAIN QUERY PLAN SELECT movie_id, COUNT(*), AVG(rating) FROM ratings "
        "WHERE movie_id IN (1, 2) GROUP BY movie_id"
    )
    async with db_engine.connect() as connection:
        plan = " ".join(str(row[-1]) for row in await connection.exec_driver_sql(statistics))
    assert "COVERING INDEX ix_ratings_movie_id_rating" in plan


async def test_tables_that_are_not_the_old_schema_are_refused_untouched(
    db_engine: AsyncEngine,
) -> None:
    async with write_connection(db_engine) as connection:
        await connection.exec_driver_sql("CREATE TABLE movies (id INTEGER PRIMARY KEY, name TEXT)")

    with pytest.raises(SchemaNotRecognised) as refused:
        await upgrade(db_engine)

    message = refused.value.message
    assert "table api_tokens is missing" in message
    assert "table movies has columns ['name'] extra" in message
    async with db_engine.connect() as connection:
        tables = await connection.run_sync(lambda c: sorted(inspect(c).get_table_names()))
    assert tables == ["movies"]  # no alembic_version, nothing created


async def test_upgrades_running_at_once_apply_each_revision_once(
    db_engine: AsyncEngine, tmp_path: Path
) -> None:
    """Two processes running `db init` together: one migrates, the other finds it done."""
    if db_engine.dialect.name == "sqlite":
        # The file exists (and is in WAL mode) before they race, as a deployed database does:
        # two first connections to a brand-new file can both try to switch it to WAL, and
        # SQLite answers one of them "database is locked" without waiting.
        await schema_state(db_engine)
        second = create_db_engine(db_engine.url)
    else:
        search_path = await _search_path(db_engine)
        second = create_db_engine(
            db_engine.url, connect_args={"server_settings": {"search_path": search_path}}
        )
    try:
        results = await asyncio.gather(upgrade(db_engine), upgrade(second))
    finally:
        await second.dispose()
    assert sorted(result.changed for result in results) == [False, True]
    async with db_engine.connect() as connection:
        versions = (await connection.execute(text("SELECT * FROM alembic_version"))).all()
    assert [tuple(row) for row in versions] == [(head_revision(),)]


async def _search_path(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        return str((await connection.execute(text("SHOW search_path"))).scalar_one())


async def test_a_failed_upgrade_leaves_the_schema_as_it_was(
    db_engine: AsyncEngine, tiny_dir: Path
) -> None:
    """A revision that fails half-way is rolled back whole (transactional DDL on both)."""
    await init_database(db_engine, tiny_dir)
    await downgrade(db_engine, BASELINE)
    async with write_connection(db_engine) as connection:
        # 0002 creates this index first: make that step fail by taking its name
        await connection.exec_driver_sql(
            "CREATE INDEX ix_ratings_movie_id_rating ON ratings (rated_at)"
        )
    with pytest.raises(Exception, match="ix_ratings_movie_id_rating"):
        await upgrade(db_engine)
    assert (await schema_state(db_engine)).revision == BASELINE
    async with db_engine.connect() as connection:
        indexes = await connection.run_sync(lambda c: inspect(c).get_indexes("ratings"))
        rated = (await connection.execute(select(Rating.user_id))).all()
    assert {index["name"] for index in indexes} == {
        "ix_ratings_movie_id",
        "ix_ratings_movie_id_rating",
    }
    assert len(rated) == 9


async def test_readiness_names_what_to_run_for_every_schema_state(db_engine: AsyncEngine) -> None:
    async def problem() -> str | None:
        return schema_problem(await schema_state(db_engine), "DB")

    assert await problem() == "database DB is empty: run `recsys-gql db init`"
    await make_pre_migration_database(db_engine)
    assert "created before schema migrations: run `recsys-gql db upgrade`" in str(await problem())
    await upgrade(db_engine)
    assert await problem() is None
    await downgrade(db_engine, BASELINE)
    assert await problem() == (
        f"database DB is at schema revision {BASELINE} but this version needs "
        f"{head_revision()}: run `recsys-gql db upgrade`"
    )
    async with write_connection(db_engine) as connection:
        await connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    assert "at schema revision 9999, which this version does not know" in str(await problem())


def test_the_alembic_command_runs_the_same_revisions_on_its_own_engine(tmp_path: Path) -> None:
    """What a developer runs from the repository root (alembic.ini): env.py opens the async
    engine itself; `alembic check` then finds the models and the database equal."""
    environment = {
        **os.environ,
        "RECSYS_GQL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}",
    }
    alembic = [sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini")]
    for command in (["upgrade", "head"], ["check"], ["current"]):
        done = subprocess.run(
            [*alembic, *command],
            env=environment,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert f"{head_revision()} (head)" in done.stdout
