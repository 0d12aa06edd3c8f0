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


def test_a_new_user_is_created_and_a_re_rating_updates_in_place(api: Server) -> None:
    user, token = sign_up(api)
    assert ratings_of(api, user) == {}
    saved = rate(api, user, 1, 4.5, token)
    assert saved["__typename"] == "RatingSaved"
    assert saved["rating"]["rating"] == 4.5
    assert saved["rating"]["movie"]["title"] == "Toy Story"
    assert saved["user"] == {"id": user, "ratingsCount": 1}
    again = rate(api, user, 1, 2.0, token)
    assert again["__typename"] == "RatingSaved"
    assert ratings_of(api, user) == {1: 2.0}
    assert api.graphql(RATINGS, {"u": user})["data"]["user"]["ratingsCount"] == 1


def test_invalid_input_is_refused_and_writes_nothing(api: Server) -> None:
    user, token = sign_up(api)
    for value in (7.0, 0.0, -1.0, 3.3, 5.5):
        refused = rate(api, user, 1, value, token)
        assert refused["__typename"] == "InvalidRating", value
        assert refused["field"] == "rating"
    missing = rate(api, user, 999_999_999, 4.0, token)
    assert missing == {
        "__typename": "MovieNotFound",
        "message": "movie 999999999 does not exist",
        "movieId": 999_999_999,
    }
    assert ratings_of(api, user) == {}
    # a float literal too large for a double reaches the resolver as inf and is refused too
    body = api.graphql(
        f"mutation {{ rateMovie(input: {{userId: {user}, movieId: 1, rating: 1e400}})"
        " { __typename ... on InvalidRating { field } } }",
        token=token,
    )
    assert body["data"]["rateMovie"] == {"__typename": "InvalidRating", "field": "rating"}
    assert ratings_of(api, user) == {}


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


def test_a_re_rating_changes_the_next_recommendations_at_once(api: Server) -> None:
    """Repeat requests may reuse a computed answer, but only while the ratings are the same:
    the same movies with one value changed must give a fresh answer."""
    user, token = sign_up(api)
    for movie in (1, 2355, 3114, 4886, 6377):
        assert rate(api, user, movie, 5.0, token)["__typename"] == "RatingSaved"
    first = api.graphql(RECS, {"u": user})["data"]["recommendations"]
    assert api.graphql(RECS, {"u": user})["data"]["recommendations"] == first
    assert rate(api, user, 1, 0.5, token)["__typename"] == "RatingSaved"
    after = api.graphql(RECS, {"u": user})["data"]["recommendations"]
    assert after != first
    # what anyone with those ratings now gets, computed from scratch
    twin, twin_token = sign_up(api)
    for movie, value in ((1, 0.5), (2355, 5.0), (3114, 5.0), (4886, 5.0), (6377, 5.0)):
        assert rate(api, twin, movie, value, twin_token)["__typename"] == "RatingSaved"
    assert api.graphql(RECS, {"u": twin})["data"]["recommendations"] == after


def test_ratings_survive_a_server_restart(api_settings: Settings) -> None:
    with running(api_settings) as first:
        user, token = sign_up(first)
        assert rate(first, user, 296, 3.5, token)["__typename"] == "RatingSaved"
        assert rate(first, user, 296, 4.0, token)["__typename"] == "RatingSaved"
    with running(api_settings) as second:
        assert ratings_of(second, user) == {296: 4.0}
