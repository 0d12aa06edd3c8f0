"""DataLoaders batch per request: twenty recommended movies cost one movie lookup."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from recsys_gql.api.context import Context
from recsys_gql.api.loaders import Loaders
from recsys_gql.api.schema import build_schema
from recsys_gql.db.session import Database
from recsys_gql.recsys.engine import Engine
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

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        context = Context(
            request=None,  # type: ignore[arg-type]
            response=None,  # type: ignore[arg-type]
            engine=engine,
            database=database,
            loaders=Loaders.create(database.sessions),
            settings=api_settings,
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
    assert len(movie_queries) == 1, movie_queries
    assert len(rating_queries) == 1, rating_queries  # the user's current ratings, once
