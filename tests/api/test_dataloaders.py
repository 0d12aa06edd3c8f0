"""Lists resolve in batches: twenty recommended movies cost no per-movie query (movies come
from the catalog loaded at start-up) and the user's ratings are read once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event

from recsys_gql.api.context import Context
from recsys_gql.api.loaders import Loaders
from recsys_gql.api.schema import build_schema
from recsys_gql.api.types import catalog_types
from recsys_gql.db.hot_reads import SqliteHotReads
from recsys_gql.db.rating_writer import RatingWriter
from recsys_gql.db.repository import all_movies
from recsys_gql.db.session import Database
from recsys_gql.recsys.engine import Engine
from recsys_gql.recsys.memo import RecommendationMemo
from recsys_gql.settings import Settings


@pytest.fixture(scope="module")
def engine(api_settings: Settings) -> Engine:
    return Engine.load(api_settings.artifacts_dir / "current")


async def test_recommendations_issue_one_movie_lookup(
    api_settings: Settings, engine: Engine
) -> None:
    database = Database.open(api_settings.database_url)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async with database.sessions() as session:
        catalog = await all_movies(session)
    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    if isinstance(database.reads, SqliteHotReads):
        database.reads.trace = statements.append
    try:
        context = Context(
            request=None,  # type: ignore[arg-type]
            response=None,  # type: ignore[arg-type]
            engine=engine,
            database=database,
            loaders=Loaders.create(database.reads, catalog),
            catalog=catalog_types(catalog),
            settings=api_settings,
            rating_writer=RatingWriter(database),
            recommendation_memo=RecommendationMemo(0),
        )
        result = await build_schema().execute(
            "{ recommendations(userId: 1, first: 20) { movie { title genres } } }",
            context_value=context,
        )
    finally:
        await database.dispose()
    assert result.errors is None
    assert result.data is not None
    assert len(result.data["recommendations"]) == 20
    movie_queries = [s for s in statements if "FROM movies" in s]
    rating_queries = [s for s in statements if "FROM ratings" in s]
    assert movie_queries == []
    assert len(rating_queries) == 1, rating_queries  # the user's current ratings, once


async def test_a_list_of_loader_keys_is_one_batch(api_settings: Settings) -> None:
    """The batching itself: twenty concurrent loads of rating statistics are one query."""
    database = Database.open(api_settings.database_url)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    if isinstance(database.reads, SqliteHotReads):
        database.reads.trace = statements.append
    try:
        loaders = Loaders.create(database.reads, {})
        stats = await asyncio.gather(*(loaders.movie_stats.load(movie) for movie in range(1, 21)))
    finally:
        await database.dispose()
    assert len(stats) == 20
    assert stats[0][0] >= 215  # Toy Story's rating count
    assert len([s for s in statements if "FROM ratings" in s]) == 1
