"""What stops an operation before any resolver runs: query cost, document limits and the
rate limits, each with its code, over the tiny engine."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tests.fast.conftest import FastClient, TinyWorld, fast_schema

RECS = """{ recommendations(userId: 1, first: 100) {
  movie { id similar(first: 100) { movie { id } } } } }"""


def client(world: TinyWorld, state: Mapping[str, Any], **settings: Any) -> FastClient:
    """A client of a schema built with some settings changed (the same engine and database)."""
    return FastClient(fast_schema(world.settings.model_copy(update=settings)), state)


async def test_a_costly_operation_is_refused_whole(gql: FastClient) -> None:
    answer = await gql.run(RECS)
    assert answer.codes == ["QUERY_TOO_COSTLY"]
    assert answer.data is None
    extensions = answer.errors[0]["extensions"]
    assert extensions["cost"] > extensions["limit"] == 10_000


async def test_the_cost_limit_is_the_setting(
    tiny_world: TinyWorld, app_state: Mapping[str, Any]
) -> None:
    tight = client(tiny_world, app_state, max_query_cost=20)
    assert (await tight.run("{ movie(id: 1) { title } }")).codes == []
    refused = await tight.run("{ movies(first: 5) { totalCount } }")
    assert refused.codes == ["QUERY_TOO_COSTLY"]
    assert refused.data is None


async def test_depth_and_alias_limits(tiny_world: TinyWorld, app_state: Mapping[str, Any]) -> None:
    small = client(tiny_world, app_state, max_query_depth=3, max_query_aliases=2)
    deep = "{ movie(id: 1) { similar(first: 1) { movie { similar(first: 1) { movie { id } } } } } }"
    assert (await small.run(deep)).codes == ["GRAPHQL_VALIDATION_FAILED"]
    aliases = "{ a: genres b: genres c: genres }"
    assert (await small.run(aliases)).codes == ["GRAPHQL_VALIDATION_FAILED"]
    assert (await small.run("{ a: genres b: genres }")).codes == []


async def test_reads_over_the_limit_are_rate_limited(
    tiny_world: TinyWorld, app_state: Mapping[str, Any]
) -> None:
    limited = client(tiny_world, app_state, rate_limit_reads="2/minute")
    for _ in range(2):
        assert (await limited.run("{ genres }", client="198.51.100.1")).codes == []
    refused = await limited.run("{ genres }", client="198.51.100.1")
    assert refused.codes == ["RATE_LIMITED"]
    assert refused.data is None
    assert refused.errors[0]["extensions"]["retryAfter"] > 0
    assert (await limited.run("{ genres }", client="198.51.100.2")).codes == []  # per client


async def test_writes_over_the_limit_are_rate_limited(
    tiny_world: TinyWorld, app_state: Mapping[str, Any]
) -> None:
    limited = client(tiny_world, app_state, rate_limit_writes="1/minute")
    signed = await limited.run("mutation { signUp { token } }", client="198.51.100.3")
    assert signed.codes == []
    refused = await limited.run("mutation { signUp { token } }", client="198.51.100.3")
    assert refused.codes == ["RATE_LIMITED"]
    assert refused.data is None


async def test_no_work_starts_after_the_deadline(gql: FastClient) -> None:
    late = FastClient(gql.schema, {**gql.state, "deadline": time.monotonic() - 1})
    for query in (
        "{ popularMovies(first: 3) { id } }",
        "{ movies(first: 3) { totalCount } }",
        '{ searchMovies(query: "robots in space") { score } }',
    ):
        answer = await late.run(query)
        assert answer.codes == ["TIMEOUT"], (query, answer.errors)
    assert (await gql.run("{ popularMovies(first: 3) { id } }")).codes == []
