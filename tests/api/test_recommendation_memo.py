"""Repeat ``recommendations`` requests reuse their answer, but never a stale one: on SQLite an
unchanged database answers without even reading the ratings, and any commit makes the next
request read them again (PostgreSQL has no change counter, so it always reads)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from recsys_gql.api.schema import build_schema
from recsys_gql.db.hot_reads import SqliteHotReads
from recsys_gql.db.repository import all_movies
from recsys_gql.db.session import Database
from recsys_gql.recsys.engine import Engine, Recommendation
from recsys_gql.recsys.memo import RecommendationMemo
from recsys_gql.settings import Settings
from tests.api.conftest import direct_context, fresh_user, record_statements
from tests.db import queries

NOW = datetime(2026, 11, 26, tzinfo=UTC)
QUERY = "query R($u: Int!) { recommendations(userId: $u, first: 10) { score movie { id } } }"


async def test_a_repeat_is_answered_from_the_memo_until_something_is_committed(
    api_settings: Settings, engine: Engine
) -> None:
    database = Database.open(api_settings.database_url)
    statements = record_statements(database)
    has_counter = isinstance(database.reads, SqliteHotReads)
    memo: RecommendationMemo[Recommendation] = RecommendationMemo(16)
    schema = build_schema()
    user = fresh_user()
    try:
        async with database.sessions() as session:
            catalog = await all_movies(session)
        async with database.write() as session:
            for movie in (1, 2355, 3114):
                await queries.upsert_rating(session, user, movie, 5.0, NOW)

        async def ask() -> tuple[list[dict[str, Any]], int]:
            """The answer, and how many times the ratings were read for it."""
            statements.clear()
            context = direct_context(api_settings, engine, database, catalog, memo)
            result = await schema.execute(QUERY, {"u": user}, context_value=context)
            assert result.errors is None
            assert result.data is not None
            return result.data["recommendations"], sum("FROM ratings" in s for s in statements)

        first, reads = await ask()
        assert reads == 1
        assert (memo.hits, memo.misses) == (0, 1)
        again, reads = await ask()
        assert again == first
        assert reads == (0 if has_counter else 1)  # SQLite: unchanged, so not even read
        assert (memo.hits, memo.misses) == (1, 1)

        async with database.write() as session:  # another connection commits a rating
            await queries.upsert_rating(session, user, 4886, 5.0, NOW)
        after, reads = await ask()
        assert reads == 1
        assert after != first
        assert 4886 not in {r["movie"]["id"] for r in after}
        assert (memo.hits, memo.misses) == (1, 2)
    finally:
        await database.dispose()
