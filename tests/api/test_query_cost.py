"""The cost of an operation, estimated before it runs: the model on its own, the limit and the
read charge on a real server, and the deadline that stops a request's remaining work."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query, parse

from recsys_gql.api import weights
from recsys_gql.api.cost import INTROSPECTION_COST, MAX_PAGE, CostModel, is_list_field
from recsys_gql.api.extensions.throttling import operation_charge
from recsys_gql.api.schema import build_schema
from recsys_gql.graphiql import AUTH_HINT
from recsys_gql.recsys.engine import Engine
from recsys_gql.settings import Settings
from tests.api.conftest import EngineSpy, Server, running

REPO = Path(__file__).resolve().parents[2]
SCHEMA = build_schema()
MODEL = CostModel(SCHEMA._schema)
DEFAULTS = Settings()

# The shapes a new user found to pin the server (issue 16), and a fragment-based variant.
NESTED_SIMILAR = (
    "{ similarMovies(movieId: 1, first: 100) { movie { similar(first: 100) { movie {"
    " similar(first: 100) { movie { similar(first: 100) { movie { title } } } } } } } } }"
)
ALIASED_RECOMMENDATIONS = (
    "{ "
    + " ".join(
        f"r{i}: recommendations(userId: {i + 1}, first: 100)"
        " { movie { similar(first: 100) { movie { title } } } }"
        for i in range(30)
    )
    + " }"
)
FRAGMENTS = """
query { similarMovies(movieId: 1, first: 100) { ...Hop } }
fragment Hop on SimilarMovie { movie { similar(first: 100) { ...Leaf } } }
fragment Leaf on SimilarMovie { movie { title similar(first: 100) { movie { title } } } }
"""
TOO_COSTLY = {
    "nested similar": NESTED_SIMILAR,
    "aliased recommendations": ALIASED_RECOMMENDATIONS,
    "fragments": FRAGMENTS,
}


def cost(query: str, variables: dict[str, Any] | None = None) -> int:
    return MODEL.estimate(parse(query), None, variables)


# --- the model --------------------------------------------------------------------------------


def test_scalars_are_free_and_each_object_costs_one() -> None:
    assert cost("{ __typename }") == 0
    assert cost("{ genres }") == 0
    assert cost("{ movie(id: 1) { title year genres } }") == 1
    assert cost("{ movie(id: 1) { __typename } }") == 1
    assert cost("{ user(id: 1) { id } viewer { id } }") == 2


def test_a_field_backed_by_the_engine_or_database_adds_its_weight() -> None:
    assert cost("{ movie(id: 1) { ratingsCount } }") == 1 + weights.W_MOVIE_STATS
    assert cost("{ movie(id: 1) { ratingsCount averageRating } }") == 1 + 2 * weights.W_MOVIE_STATS
    assert cost("{ health { ok } }") == weights.W_HEALTH + 1


def test_a_list_multiplies_its_selection_by_first() -> None:
    assert cost("{ popularMovies(first: 5) { title } }") == weights.W_POPULAR + 5
    # absent: the argument's default (10); beyond the largest page: the largest page
    assert cost("{ popularMovies { title } }") == weights.W_POPULAR + 10
    assert cost("{ popularMovies(first: 1000) { title } }") == weights.W_POPULAR + MAX_PAGE
    assert cost("{ popularMovies(first: -3) { title } }") == weights.W_POPULAR


def test_first_from_a_variable_its_default_or_else_the_largest_page() -> None:
    query = "query ($n: Int) { popularMovies(first: $n) { title } }"
    assert cost(query, {"n": 7}) == weights.W_POPULAR + 7
    assert cost(query, {}) == weights.W_POPULAR + MAX_PAGE  # unknown: assume the worst
    assert cost(query, {"n": "7"}) == weights.W_POPULAR + MAX_PAGE  # refused later anyway
    with_default = "query ($n: Int = 3) { popularMovies(first: $n) { title } }"
    assert cost(with_default, {}) == weights.W_POPULAR + 3
    assert cost(with_default, {"n": 4}) == weights.W_POPULAR + 4


def test_nesting_multiplies_and_aliases_each_count() -> None:
    inner = 1 + (1 + weights.W_SIMILAR + 5 * (1 + 1))  # a SimilarMovie, its movie, its similar
    nested = (
        "{ similarMovies(movieId: 1, first: 10) "
        "{ movie { similar(first: 5) { movie { title } } } } }"
    )
    assert cost(nested) == weights.W_SIMILAR + 10 * inner
    aliased = "{ a: movie(id: 1) { title } b: movie(id: 2) { title } c: movie(id: 3) { id } }"
    assert cost(aliased) == 3


def test_fragments_count_where_they_are_spread() -> None:
    spread_twice = """
    { a: movie(id: 1) { ...M } b: popularMovies(first: 4) { ...M } }
    fragment M on Movie { title ratingsCount }
    """
    per_movie = 1 + weights.W_MOVIE_STATS
    assert cost(spread_twice) == per_movie + weights.W_POPULAR + 4 * per_movie
    inline = "{ movie(id: 1) { ... on Movie { ratingsCount } ... { averageRating } } }"
    assert cost(inline) == 1 + 2 * weights.W_MOVIE_STATS
    nested = """
    { movie(id: 1) { ...Outer } }
    fragment Outer on Movie { similar(first: 3) { ...Inner } }
    fragment Inner on SimilarMovie { movie { ratingsCount } }
    """
    assert cost(nested) == 1 + weights.W_SIMILAR + 3 * (1 + 1 + weights.W_MOVIE_STATS)


def test_on_a_union_the_costliest_member_counts() -> None:
    query = """
    mutation {
      rateMovie(input: {userId: 1, movieId: 1, rating: 4}) {
        __typename
        ... on RatingSaved { rating { movie { title } } user { id ratingsCount } }
        ... on InvalidRating { message }
      }
    }
    """
    saved = 2 + 1 + weights.W_USER_RATINGS  # rating and its movie; user and its count
    assert cost(query) == weights.W_RATE_MOVIE + 1 + saved


def test_a_connection_sizes_its_edges_by_first() -> None:
    query = "{ movies(first: 7) { totalCount edges { node { title } } pageInfo { hasNextPage } } }"
    assert cost(query) == weights.W_MOVIES + 1 + 7 * 2 + 1
    default = "{ user(id: 1) { ratings { edges { node { rating } } } } }"
    assert cost(default) == 1 + weights.W_RATINGS_PAGE + 1 + 20 * 2


def test_an_explanation_names_at_most_three_movies() -> None:
    query = (
        "{ recommendations(userId: 1, first: 2) "
        "{ explanation { because { title } contributions { share movie { id } } } } }"
    )
    explanation = 1 + 3 * 1 + 3 * 2
    assert cost(query) == weights.W_RECOMMENDATIONS + 2 * (1 + weights.W_EXPLANATION + explanation)


def test_skip_and_include_drop_what_they_certainly_drop() -> None:
    query = "query ($s: Boolean!) { movie(id: 1) { ratingsCount @skip(if: $s) } }"
    assert cost(query, {"s": True}) == 1
    assert cost(query, {"s": False}) == 1 + weights.W_MOVIE_STATS
    assert cost("{ movie(id: 1) @include(if: false) { title } }") == 0
    assert cost(query, {}) == 1 + weights.W_MOVIE_STATS  # unknown: counted


def test_introspection_has_a_flat_price() -> None:
    assert cost("{ __schema { types { name fields { name } } } }") == INTROSPECTION_COST
    assert cost(get_introspection_query()) == INTROSPECTION_COST


def test_every_list_of_objects_declares_its_size() -> None:
    """A list field without a slicing argument, a parent that sizes it or an assumed size
    would be priced at the largest page: declare it instead."""
    sized_by_parent = {
        (name, field)
        for (parent, _), spec in MODEL.costs.items()
        for field in spec.sized_fields
        for name in [SCHEMA._schema.type_map[parent].fields[_].type.of_type.name]  # type: ignore[attr-defined]
    }
    missing = []
    for type_name, graphql_type in SCHEMA._schema.type_map.items():
        fields = getattr(graphql_type, "fields", None)
        if type_name.startswith("__") or not isinstance(fields, dict):
            continue
        for field_name, field in fields.items():
            named = field.type
            while hasattr(named, "of_type"):
                named = named.of_type
            if not is_list_field(field) or not hasattr(named, "fields"):
                continue
            spec = MODEL.costs.get((type_name, field_name))
            declared = spec is not None and (spec.slicing_arguments or spec.assumed_size)
            if not declared and (type_name, field_name) not in sized_by_parent:
                missing.append(f"{type_name}.{field_name}")
    assert missing == []


def test_declared_weights_follow_the_committed_measurement() -> None:
    """The weights in weights.py are the ones bench/results/query_cost.json measured, rounded
    (within 3x, or 10 units for the lightest, as the measurement is noisy): re-run
    ``python -m bench.query_cost`` and update them together."""
    measured = json.loads((REPO / "bench" / "results" / "query_cost.json").read_text())
    weights: dict[str, float] = measured["weights"]
    for field, measured_weight in weights.items():
        value = max(0.0, measured_weight)  # a call within the noise can come out below zero
        if field == "__schema":
            declared = INTROSPECTION_COST
        else:
            type_name, field_name = field.split(".")
            declared = MODEL.costs[(type_name, field_name)].weight
        assert value / 3 - 10 <= declared <= value * 3 + 10, (field, value, declared)


# --- what real clients send ----------------------------------------------------------------


def web_operations() -> dict[str, str]:
    text = (REPO / "recsys_gql" / "web" / "src" / "operations.ts").read_text(encoding="utf-8")
    documents = re.findall(r"graphql\(`(.*?)`\)", text, flags=re.DOTALL)
    assert len(documents) >= 8
    return {re.search(r"(?:query|mutation)\s+(\w+)", d).group(1): d for d in documents}  # type: ignore[union-attr]


def page_size(name: str) -> int:
    """``FOR_YOU_COUNT``: the page size the "For you" view asks for."""
    source = (REPO / "recsys_gql" / "web" / "src" / "components" / "ForYou.tsx").read_text()
    match = re.search(rf"export const {name} = (\d+);", source)
    assert match, name
    return int(match.group(1))


def client_operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path in sorted((REPO / "examples").glob("*.graphql")):
        yield f"examples/{path.name}", path.read_text(encoding="utf-8"), {}
    for name, document in web_operations().items():
        variables = {"first": page_size("FOR_YOU_COUNT")} if name == "ForYou" else {}
        yield f"web page {name}", document, variables
    yield "GraphiQL's introspection", get_introspection_query(), {}
    examples = re.findall(r"^#\s+(\{ .*\})\s*$", AUTH_HINT, flags=re.MULTILINE)
    assert examples, AUTH_HINT
    yield "GraphiQL's example", examples[-1], {}


CLIENT_OPERATIONS = list(client_operations())


@pytest.mark.parametrize(
    ("name", "document", "variables"), CLIENT_OPERATIONS, ids=[op[0] for op in CLIENT_OPERATIONS]
)
def test_what_clients_send_passes_and_spends_one_read(
    name: str, document: str, variables: dict[str, Any]
) -> None:
    parsed = parse(document)
    estimate = MODEL.estimate(parsed, None, variables)
    assert 0 <= estimate <= DEFAULTS.max_query_cost, (name, estimate)
    bucket, spent = operation_charge(
        parsed, None, variables, estimate, DEFAULTS.query_cost_per_read
    )
    assert spent == 1, (name, estimate, bucket)


@pytest.mark.parametrize("query", TOO_COSTLY.values(), ids=list(TOO_COSTLY))
def test_the_shapes_that_pinned_the_server_are_over_the_limit(query: str) -> None:
    assert cost(query) > 10 * DEFAULTS.max_query_cost


# --- on a real server ---------------------------------------------------------------------


@pytest.mark.parametrize("query", TOO_COSTLY.values(), ids=list(TOO_COSTLY))
def test_a_costly_operation_is_refused_before_anything_runs(
    api: Server, engine_calls: EngineSpy, query: str
) -> None:
    response = httpx.post(f"{api.url}/graphql", json={"query": query}, timeout=30)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    extensions = error["extensions"]
    assert extensions["code"] == "QUERY_TOO_COSTLY"
    assert extensions["limit"] == api.settings.max_query_cost
    assert extensions["cost"] == cost(query) > extensions["limit"]
    assert str(extensions["limit"]) in error["message"]
    assert engine_calls.total == 0  # refused before any resolver reached the engine


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""For tests of limits that start a server of their own: the database behind it is not what
they check, so one backend is enough (each server start loads the engine again)."""


@pytest.fixture(scope="module")
def metered(api_settings: Settings) -> Iterator[Server]:
    """A server whose reads are priced finely (10 cost units a read) from a budget of 1,000."""
    settings = api_settings.model_copy(
        update={"rate_limit_reads": "1000/minute", "query_cost_per_read": 10}
    )
    with running(settings) as server:
        yield server


@SQLITE_ONLY
def test_rate_limit_reports_what_was_charged(metered: Server) -> None:
    small = (
        "{ rateLimit { cost limit remaining resetAt queryCost maxQueryCost } "
        "movie(id: 1) { title } }"
    )
    big = (
        "{ rateLimit { cost remaining queryCost } "
        "popularMovies(first: 100) { title similar(first: 5) { movie { title } } } }"
    )
    first = httpx.post(f"{metered.url}/graphql", json={"query": small}, timeout=30)
    assert first.status_code == 200, first.text
    limit = first.json()["data"]["rateLimit"]
    assert limit["queryCost"] == cost(small)
    assert limit["cost"] == 1
    assert limit["limit"] == 1000
    assert limit["maxQueryCost"] == metered.settings.max_query_cost
    headers = first.headers
    assert headers["X-RateLimit-Cost"] == "1"
    assert headers["X-RateLimit-Resource"] == "read"
    assert int(headers["X-RateLimit-Remaining"]) == limit["remaining"]
    assert int(headers["X-RateLimit-Limit"]) == 1000
    reset_in = datetime.fromisoformat(limit["resetAt"]) - datetime.now(UTC)
    assert timedelta(0) < reset_in <= timedelta(seconds=61)

    second = httpx.post(f"{metered.url}/graphql", json={"query": big}, timeout=30)
    assert second.status_code == 200, second.text
    charged = second.json()["data"]["rateLimit"]
    assert charged["queryCost"] == cost(big)
    assert charged["cost"] == math.ceil(cost(big) / 10) >= 100  # about 100x the small one
    assert int(second.headers["X-RateLimit-Cost"]) == charged["cost"]
    assert charged["remaining"] == limit["remaining"] - charged["cost"]


@SQLITE_ONLY
def test_a_query_over_the_remaining_budget_is_refused_whole(
    api_settings: Settings, engine_calls: EngineSpy
) -> None:
    settings = api_settings.model_copy(
        update={"rate_limit_reads": "50/minute", "query_cost_per_read": 10}
    )
    big = "{ popularMovies(first: 100) { title similar(first: 3) { movie { title } } } }"
    with running(settings) as server:
        response = httpx.post(f"{server.url}/graphql", json={"query": big}, timeout=30)
        assert response.status_code == 429, response.text
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["cost"] == math.ceil(cost(big) / 10)
        assert engine_calls.total == 0
        small = httpx.post(f"{server.url}/graphql", json={"query": "{ rateLimit { remaining } }"})
        assert small.json()["data"]["rateLimit"]["remaining"] == 49  # the refusal spent nothing


@SQLITE_ONLY
def test_the_request_timeout_stops_the_remaining_work(
    api_settings: Settings, engine_calls: EngineSpy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty engine calls of 100 ms each (2 s in all), well within the cost limit, outlast a
    0.2 s request timeout: the client gets 503 TIMEOUT long before the work could have ended,
    and the calls not started by then never start (the engine is slowed with a sleep so the
    test does not depend on the machine's speed)."""
    popular = Engine.popular  # the spy: it records the start of each call

    def slow_popular(self: Engine, *args: Any, **kwargs: Any) -> Any:
        found = popular(self, *args, **kwargs)
        time.sleep(0.1)
        return found

    monkeypatch.setattr(Engine, "popular", slow_popular)
    timeout = 0.2
    settings = api_settings.model_copy(update={"request_timeout_seconds": timeout})
    query = "{ " + " ".join(f"p{i}: popularMovies(first: 3) {{ title }}" for i in range(20)) + " }"
    assert cost(query) <= settings.max_query_cost
    with running(settings) as server:
        started = time.monotonic()
        response = httpx.post(f"{server.url}/graphql", json={"query": query}, timeout=30)
        answered = time.monotonic()
        time.sleep(0.5)
    assert response.status_code == 503, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"
    assert answered - started < 1.0  # half of what the twenty calls would take
    calls = engine_calls.starts["popular"]
    assert 1 <= len(calls) < 20
    assert max(calls) < answered  # nothing started after the answer
