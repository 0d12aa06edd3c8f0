"""Out-of-range arguments are refused before anything runs, wherever they appear."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql import parse

from recsys_gql.api.extensions.arguments import check_arguments
from recsys_gql.errors import InvalidArgument
from tests.api.conftest import EngineSpy, Server


def check(query: str, variables: dict[str, Any] | None = None) -> None:
    check_arguments(parse(query), None, variables)


@pytest.mark.parametrize(
    ("query", "variables", "field"),
    [
        ("{ popularMovies(first: 0) { id } }", None, "first"),
        ("{ popularMovies(first: 101) { id } }", None, "first"),
        (
            "query ($n: Int) { similarMovies(movieId: 1, first: $n) { similarity } }",
            {"n": -5},
            "first",
        ),
        ("query ($n: Int = 500) { popularMovies(first: $n) { id } }", {}, "first"),
        ("{ recommendations(userId: 1, alpha: 1.5) { score } }", None, "alpha"),
        (
            "query ($a: Float) { recommendations(userId: 1, alpha: $a) { score } }",
            {"a": -0.1},
            "alpha",
        ),
        # deep inside lists, fragments and inline fragments
        (
            "{ movie(id: 1) { similar { movie { similar(first: 0) { similarity } } } } }",
            None,
            "first",
        ),
        (
            "{ movie(id: 1) { ...F } } fragment F on Movie { similar(first: 1000) { similarity } }",
            None,
            "first",
        ),
        ("{ movie(id: 1) { ... on Movie { similar(first: -1) { similarity } } } }", None, "first"),
        ("{ recommendations(userId: 1, diversity: 1.01) { score } }", None, "diversity"),
        (
            "query ($d: Float) { recommendations(userId: 1, diversity: $d) { score } }",
            {"d": -0.5},
            "diversity",
        ),
        (
            "query ($x: [Int!]) { recommendations(userId: 1, excludeMovieIds: $x) { score } }",
            {"x": list(range(501))},
            "excludeMovieIds",
        ),
        ("{ movies(yearFrom: 2000, yearTo: 1990) { totalCount } }", None, "yearFrom"),
        (
            "query ($to: Int) { movies(yearFrom: 1995, yearTo: $to) { totalCount } }",
            {"to": 1994},
            "yearFrom",
        ),
    ],
)
def test_an_argument_out_of_range_is_named(
    query: str, variables: dict[str, Any] | None, field: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check(query, variables)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (
            "{ popularMovies(first: 1) { id } recommendations(userId: 1, first: 100) { score } }",
            None,
        ),
        ("{ recommendations(userId: 1, alpha: 0) { score } }", None),
        ("{ recommendations(userId: 1, diversity: 1) { score } }", None),
        (
            "query ($x: [Int!]) { recommendations(userId: 1, excludeMovieIds: $x) { score } }",
            {"x": list(range(500))},
        ),
        ("query ($n: Int) { popularMovies(first: $n) { id } }", {"n": 20}),
        ("query ($n: Int) { popularMovies(first: $n) { id } }", {}),  # the field's default
        ("query ($s: Boolean!) { popularMovies(first: 0) @skip(if: $s) { id } }", {"s": True}),
        ('{ popularMovies(first: "ten") { id } }', None),  # a type error: GraphQL's to refuse
        ("{ movies(yearFrom: 1995, yearTo: 1995) { totalCount } }", None),
        ("query ($to: Int) { movies(yearFrom: 1995, yearTo: $to) { totalCount } }", {}),
    ],
)
def test_arguments_in_range_or_skipped_pass(query: str, variables: dict[str, Any] | None) -> None:
    check(query, variables)


def test_a_bad_argument_deep_in_a_query_runs_nothing(api: Server, engine_calls: EngineSpy) -> None:
    query = (
        "{ recommendations(userId: 1, first: 10) { movie { title "
        "similar(first: -95641527) { movie { title } } } } }"
    )
    response = httpx.post(f"{api.url}/graphql", json={"query": query}, timeout=30)
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "INVALID_ARGUMENT", "field": "first"}
    assert "-95641527" in error["message"]
    assert engine_calls.total == 0
