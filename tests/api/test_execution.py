"""A request's objects are freed when it ends (by reference counting), never left in a
reference cycle for the garbage collector: collecting them all at once stalled the event loop
for 10-36 ms, a wait for every request in flight."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from types import FunctionType

import pytest
from graphql import parse
from starlette.requests import Request
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from recsys_gql.api.context import Context
from recsys_gql.api.execution import AcyclicExecutionContext
from recsys_gql.api.schema import build_schema
from tests.api.conftest import Server, sign_up

OPERATIONS = [
    "{ __typename }",
    "{ movie(id: 1) { title ratingsCount similar(first: 3) { movie { title } } } }",
    "{ recommendations(userId: 1, first: 5) { score movie { title }"
    " explanation { summary because { title } } } }",
    "{ user(id: 1) { ratingsCount ratings(first: 3) { edges { node { rating movie { title } } } } }"
    " }",
    '{ movies(search: "toy", first: 2) { totalCount edges { node { title } } } }',
]
BAD_INPUT = "{ recommendations(userId: 1, first: 0) { score } }"
"""An answered error: its traceback's frames hold the executor, which holds the error."""
RATE = """mutation ($input: RateMovieInput!) { rateMovie(input: $input) {
  __typename ... on RatingSaved { rating { rating } } } }"""


@contextmanager
def garbage_types() -> Iterator[list[tuple[type, str | None]]]:
    """The type of everything the collector finds unreachable inside the block, with the
    module of each function (types only: keeping the objects would keep their cycles alive
    past the block)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        found: list[tuple[type, str | None]] = []
        yield found
        gc.collect()
        found.extend(
            (type(o), o.__module__ if isinstance(o, FunctionType) else None) for o in gc.garbage
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def per_request_types(garbage: list[tuple[type, str | None]]) -> list[tuple[type, str | None]]:
    """What a request of this server left: its objects, or functions of ours (a recursive
    closure is a cycle of its own). The test client's and other libraries' garbage is not."""
    return [
        (kind, module)
        for kind, module in garbage
        if issubclass(kind, Context | Request | StrawberryGraphQLCoreExecutionContext)
        or (module or "").startswith("recsys_gql")
    ]


def test_requests_leave_no_reference_cycles(api: Server) -> None:
    user_id, token = sign_up(api)
    rating = {"input": {"userId": user_id, "movieId": 1, "rating": 4.0}}
    for query in OPERATIONS:  # warm-up: first-use caches are not per-request garbage
        assert "errors" not in api.graphql(query)
    api.graphql(RATE, rating, token=token)
    api.graphql(BAD_INPUT, status=400)

    with garbage_types() as garbage:
        for _ in range(3):
            for query in OPERATIONS:
                assert "errors" not in api.graphql(query)
            saved = api.graphql(RATE, rating, token=token)["data"]["rateMovie"]
            assert saved["__typename"] == "RatingSaved"
            refused = api.graphql(BAD_INPUT, status=400)
            assert refused["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"
    assert per_request_types(garbage) == []


def test_the_stock_execution_context_leaves_a_cycle() -> None:
    """What the check above would see without :class:`AcyclicExecutionContext` (so it cannot
    pass for want of looking in the right place)."""
    schema = build_schema()._schema
    with garbage_types() as garbage:
        StrawberryGraphQLCoreExecutionContext.build(schema, parse("{ __typename }"))
    assert (StrawberryGraphQLCoreExecutionContext, None) in garbage

    with garbage_types() as garbage:
        AcyclicExecutionContext.build(schema, parse("{ __typename }"))
    assert per_request_types(garbage) == []


def test_helpers_outliving_their_execution_say_so() -> None:
    executor = AcyclicExecutionContext.build(build_schema()._schema, parse("{ __typename }"))
    assert isinstance(executor, AcyclicExecutionContext)
    helpers = executor.async_helpers
    helpers.track([1, "not awaitable"])  # delegates to the executor while it lives
    del executor
    with pytest.raises(RuntimeError, match="has ended"):
        helpers.track([])
