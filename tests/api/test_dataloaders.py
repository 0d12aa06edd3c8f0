"""Lists resolve in batches: twenty recommended movies cost no per-movie query (movies come
from the catalog loaded at start-up) and the user's ratings are read once."""

from __future__ import annotations

import asyncio

from recsys_gql.api.loaders import Loaders
from recsys_gql.api.schema import build_schema
from recsys_gql.db.repository import all_movies
from recsys_gql.db.session import Database
from recsys_gql.recsys.engine import Engine
from recsys_gql.settings import Settings
from tests.api.conftest import direct_context, record_statements


async def test_recommendations_issue_one_movie_lookup(
    api_settings: Settings, engine: Engine
) -> None:
    database = Database.open(api_settings.database_url)
    try:
        async with database.sessions() as session:
            catalog = await all_movies(session)
        statements = record_statements(database)  # from here on
        result = await build_schema().execute(
            "{ recommendations(userId: 1, first: 20) { movie { title genres } } }",
            context_value=direct_context(api_settings, engine, database, catalog),
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
    statements = record_statements(database)
    try:
        loaders = Loaders.create(database.reads, {})
        stats = await asyncio.gather(*(loaders.movie_stats.load(movie) for movie in range(1, 21)))
    finally:
        await database.dispose()
    assert len(stats) == 20
    assert stats[0][0] >= 215  # Toy Story's rating count
    assert len([s for s in statements if "FROM ratings" in s]) == 1
