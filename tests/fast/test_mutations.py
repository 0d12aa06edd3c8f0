"""signUp and rateMovie over the tiny engine: every payload type, and what a rating changes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fast.conftest import FastClient
from tests.fast.movielens_gen import movie_ids

RATE = """mutation ($u: Int!, $m: Int!, $r: Float!) {
  rateMovie(input: {userId: $u, movieId: $m, rating: $r}) {
    __typename
    ... on RatingSaved { message rating { rating ratedAt movie { id title } user { id } }
                         user { id ratingsCount } }
    ... on InvalidRating { message field }
    ... on MovieNotFound { message movieId }
    ... on Unauthenticated { message code }
    ... on Forbidden { message code }
  } }"""
RATINGS = """query ($u: Int!) { user(id: $u) { ratingsCount
  ratings(first: 100) { edges { node { rating movie { id } } } } } }"""
RECS = """query ($u: Int!) { recommendations(userId: $u, first: 10) {
  movie { id } explanation { because { id } } } }"""
SPACE = movie_ids()["space"]


async def rate(gql: FastClient, user: int, movie: int, value: float, token: str | None) -> Any:
    return (await gql.ok(RATE, {"u": user, "m": movie, "r": value}, token=token))["rateMovie"]


async def ratings_of(gql: FastClient, user: int) -> dict[int, float]:
    edges = (await gql.ok(RATINGS, {"u": user}))["user"]["ratings"]["edges"]
    return {e["node"]["movie"]["id"]: e["node"]["rating"] for e in edges}


async def test_sign_up_gives_distinct_users_and_tokens(gql: FastClient) -> None:
    first, first_token = await gql.sign_up()
    second, second_token = await gql.sign_up()
    assert second != first
    assert first > 300  # after every user of the data set
    assert first_token.startswith("rgq_")
    assert first_token != second_token


async def test_a_rating_is_saved_and_a_re_rating_updates_in_place(gql: FastClient) -> None:
    user, token = await gql.sign_up()
    assert await ratings_of(gql, user) == {}
    saved = await rate(gql, user, 1, 4.5, token)
    assert saved["__typename"] == "RatingSaved"
    assert saved["message"] == "saved 4.5 for movie 1"
    assert saved["rating"]["rating"] == 4.5
    assert saved["rating"]["movie"] == {"id": 1, "title": "Family Story 1"}
    assert saved["rating"]["user"] == {"id": user}
    assert saved["user"] == {"id": user, "ratingsCount": 1}
    again = await rate(gql, user, 1, 2.0, token)
    assert again["__typename"] == "RatingSaved"
    assert await ratings_of(gql, user) == {1: 2.0}


@pytest.mark.parametrize("value", [7.0, 0.0, -1.0, 3.3, 5.5])
async def test_an_invalid_rating_is_refused_and_writes_nothing(
    gql: FastClient, value: float
) -> None:
    user, token = await gql.sign_up()
    refused = await rate(gql, user, 1, value, token)
    assert refused["__typename"] == "InvalidRating"
    assert refused["field"] == "rating"
    assert await ratings_of(gql, user) == {}


async def test_an_infinite_rating_is_refused(gql: FastClient) -> None:
    user, token = await gql.sign_up()
    data = await gql.ok(
        f"mutation {{ rateMovie(input: {{userId: {user}, movieId: 1, rating: 1e400}})"
        " { __typename ... on InvalidRating { field } } }",
        token=token,
    )
    assert data["rateMovie"] == {"__typename": "InvalidRating", "field": "rating"}
    assert await ratings_of(gql, user) == {}


async def test_an_unknown_movie_is_not_found_and_writes_nothing(gql: FastClient) -> None:
    user, token = await gql.sign_up()
    assert await rate(gql, user, 999_999, 4.0, token) == {
        "__typename": "MovieNotFound",
        "message": "movie 999999 does not exist",
        "movieId": 999_999,
    }
    assert await ratings_of(gql, user) == {}


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (None, "rateMovie needs `Authorization: Bearer <token>`"),
        ("rgq_" + "x" * 43, "the token is unknown or revoked"),
        ("not-ours", "the token is not a recsys-gql token"),
    ],
)
async def test_writing_without_a_valid_token_is_unauthenticated(
    gql: FastClient, token: str | None, problem: str
) -> None:
    user, _ = await gql.sign_up()
    refused = await rate(gql, user, 1, 4.0, token)
    assert refused == {
        "__typename": "Unauthenticated",
        "message": problem,
        "code": "UNAUTHENTICATED",
    }
    assert await ratings_of(gql, user) == {}


async def test_writing_for_another_user_is_forbidden(gql: FastClient) -> None:
    victim, _ = await gql.sign_up()
    _, token = await gql.sign_up()
    refused = await rate(gql, victim, 1, 4.0, token)
    assert refused["__typename"] == "Forbidden"
    assert refused["code"] == "FORBIDDEN"
    assert await ratings_of(gql, victim) == {}


async def test_ratings_change_the_next_recommendations_at_once(gql: FastClient) -> None:
    user, token = await gql.sign_up()
    cold = (await gql.ok(RECS, {"u": user}))["recommendations"]
    assert all(r["explanation"]["because"] == [] for r in cold)
    liked = SPACE[:6]
    for movie in liked:
        assert (await rate(gql, user, movie, 5.0, token))["__typename"] == "RatingSaved"
    warm = (await gql.ok(RECS, {"u": user}))["recommendations"]
    ids = [r["movie"]["id"] for r in warm]
    assert not set(ids) & set(liked)
    assert sum(movie in SPACE for movie in ids) >= 8, ids
    named = {m["id"] for r in warm for m in r["explanation"]["because"]}
    assert named
    assert named <= set(liked)
    # the same ratings with one value changed: a fresh answer, not the remembered one
    assert (await rate(gql, user, liked[0], 0.5, token))["__typename"] == "RatingSaved"
    changed = (await gql.ok(RECS, {"u": user}))["recommendations"]
    assert changed != warm
    # what anyone with those ratings now gets, computed from scratch
    twin, twin_token = await gql.sign_up()
    for movie in liked:
        value = 0.5 if movie == liked[0] else 5.0
        assert (await rate(gql, twin, movie, value, twin_token))["__typename"] == "RatingSaved"
    assert (await gql.ok(RECS, {"u": twin}))["recommendations"] == changed
