"""rateMovie through real HTTP: validation, upserts, new users, effect on recommendations,
and durability across a server restart."""

from __future__ import annotations

from typing import Any

from recsys_gql.settings import Settings
from tests.api.conftest import Server, running, sign_up

RATE = """mutation ($u: Int!, $m: Int!, $r: Float!) {
  rateMovie(input: {userId: $u, movieId: $m, rating: $r}) {
    __typename
    ... on RatingSaved { message rating { rating ratedAt movie { id title } user { id } }
                         user { id ratingsCount } }
    ... on InvalidRating { message field }
    ... on MovieNotFound { message movieId }
  } }"""
RATINGS = """query ($u: Int!) { user(id: $u) { ratingsCount
  ratings(first: 100) { totalCount edges { node { rating movie { id } } } } } }"""
RECS = """query ($u: Int!) { recommendations(userId: $u, first: 10) {
  movie { id genres } explanation { because { id } } } }"""


def rate(api: Server, user: int, movie: int, rating: float, token: str) -> dict[str, Any]:
    body = api.graphql(RATE, {"u": user, "m": movie, "r": rating}, token=token)
    payload: dict[str, Any] = body["data"]["rateMovie"]
    return payload


def ratings_of(api: Server, user: int) -> dict[int, float]:
    edges = api.graphql(RATINGS, {"u": user})["data"]["user"]["ratings"]["edges"]
    return {e["node"]["movie"]["id"]: e["node"]["rating"] for e in edges}


def test_a_rating_changes_the_next_recommendations(api: Server) -> None:
    user, token = sign_up(api)
    cold = api.graphql(RECS, {"u": user})["data"]["recommendations"]
    assert all(r["explanation"]["because"] == [] for r in cold)
    pixar = [1, 2355, 3114, 4886, 6377]
    for movie in pixar:
        assert rate(api, user, movie, 5.0, token)["__typename"] == "RatingSaved"
    warm = api.graphql(RECS, {"u": user})["data"]["recommendations"]
    assert [r["movie"]["id"] for r in warm] != [r["movie"]["id"] for r in cold]
    assert not {r["movie"]["id"] for r in warm} & set(pixar)
    named = {m["id"] for r in warm for m in r["explanation"]["because"]}
    assert named
    assert named <= set(pixar)


def test_ratings_survive_a_server_restart(api_settings: Settings) -> None:
    with running(api_settings) as first:
        user, token = sign_up(first)
        assert rate(first, user, 296, 3.5, token)["__typename"] == "RatingSaved"
        assert rate(first, user, 296, 4.0, token)["__typename"] == "RatingSaved"
    with running(api_settings) as second:
        assert ratings_of(second, user) == {296: 4.0}
