"""The cost estimate is an upper bound: for queries generated from the schema by
hypothesis-graphql (their arguments steered to values the resolvers accept, as in the schema
fuzzer), executed in-process on the real engine and database, the estimate is never below
the number of objects the answer holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import graphql
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from recsys_gql.api.cost import CostModel
from recsys_gql.api.schema import build_schema
from recsys_gql.db.repository import all_movies
from recsys_gql.db.session import Database
from recsys_gql.recsys.engine import Engine
from recsys_gql.settings import Settings
from tests.api.conftest import direct_context
from tests.reliability.test_fuzz import (
    ARGUMENT_VALUES,
    FUZZ_SETTINGS,
    SQLITE_ONLY,
    operations,
    steer_arguments,
)

EXAMPLES = 300
SCHEMA = build_schema()._schema
MODEL = CostModel(SCHEMA)
MAX_EXECUTED_COST = 20_000
"""Costlier generated queries are priced but not run (they would only take longer)."""

Execute = Callable[[graphql.DocumentNode], dict[str, Any] | None]


def objects_in(value: Any) -> int:
    """How many objects an answer holds (the root excluded)."""
    if isinstance(value, dict):
        return sum(objects_in(item) + isinstance(item, dict) for item in value.values())
    if isinstance(value, list):
        return sum(objects_in(item) + isinstance(item, dict) for item in value)
    return 0


def test_objects_are_counted_as_the_model_counts_them() -> None:
    assert objects_in({"movie": {"title": "x", "similar": [{"movie": {"id": 1}}] * 3}}) == 7
    assert objects_in({"genres": ["a", "b"], "movie": None}) == 0


@pytest.fixture(scope="module")
def execute(api_settings: Settings, engine: Engine) -> Iterator[Execute]:
    """Runs a document through the real schema (no cost limit) on its own event loop."""
    loop = asyncio.new_event_loop()
    database = Database.open(api_settings.database_url)
    unlimited = api_settings.model_copy(update={"max_query_cost": 10**12})
    schema = build_schema(unlimited)

    async def catalog() -> dict[int, Any]:
        async with database.sessions() as session:
            return await all_movies(session)

    movies = loop.run_until_complete(catalog())

    def run(document: graphql.DocumentNode) -> dict[str, Any] | None:
        context = direct_context(unlimited, engine, database, movies)
        query = graphql.print_ast(document)
        result = loop.run_until_complete(schema.execute(query, context_value=context))
        return result.data

    try:
        yield run
    finally:
        loop.run_until_complete(database.dispose())
        loop.close()


@SQLITE_ONLY
def test_the_estimate_is_never_below_the_objects_resolved(execute: Execute) -> None:
    executed: list[tuple[int, int]] = []

    @settings(max_examples=EXAMPLES, **FUZZ_SETTINGS)
    @given(document=operations("query"), values=ARGUMENT_VALUES, steer=st.booleans())
    def fuzz(
        document: graphql.DocumentNode, values: dict[str, graphql.ValueNode], steer: bool
    ) -> None:
        if steer:
            document = steer_arguments(document, values)
        assume(not graphql.validate(SCHEMA, document))
        estimate = MODEL.estimate(document)
        assume(estimate <= MAX_EXECUTED_COST)
        objects = objects_in(execute(document))
        executed.append((estimate, objects))
        assert estimate >= objects, graphql.print_ast(document)

    fuzz()
    # the property held over a real sample, not over queries that all failed
    assert len(executed) >= EXAMPLES // 2
    assert sum(1 for _, objects in executed if objects >= 10) >= 20
