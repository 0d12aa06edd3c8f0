"""hideMovie/unhideMovie and recommendations' list controls over the tiny engine: who may
hide, what a hide removes, and the bounds of excludeMovieIds and diversity."""

from __future__ import annotations

from typing import Any

from recsys_gql.recsys.filters import MAX_EXCLUDED
from tests.fast.conftest import FastClient
from tests.fast.movielens_gen import movie_ids

FAMILY = sorted(movie_ids()["family"])

FEEDBACK = """mutation ($m: Int!) {{
  {name}(movieId: $m) {{
    __typename
    ... on MovieFeedbackSaved {{ message hidden changed movie {{ id }} user {{ id }} }}
    ... on MovieNotFound {{ message movieId }}
    ... on Unauthenticated {{ message code }}
  }} }}"""
HIDE = FEEDBACK.format(name="hideMovie")
UNHIDE = FEEDBACK.format(name="unhideMovie")
RATE = """mutation ($u: Int!, $m: Int!) {
  rateMovie(input: {userId: $u, movieId: $m, rating: 5.0}) { __typename } }"""
RECS = """query ($u: Int!, $x: [Int!]) {
  recommendations(userId: $u, first: 10, diversity: 0, excludeMovieIds: $x) { movie { id } } }"""
SIMILAR = """query ($m: Int!) { similarMovies(movieId: $m, first: 10) { movie { id } } }"""


async def family_fan(gql: FastClient) -> tuple[int, str]:
    """A new signed-up user who rated five family movies 5.0."""
    user, token = await gql.sign_up()
    for movie in FAMILY[:5]:
        saved = await gql.ok(RATE, {"u": user, "m": movie}, token=token)
        assert saved["rateMovie"]["__typename"] == "RatingSaved"
    return user, token


async def recommended(gql: FastClient, user: int, exclude: list[int] | None = None) -> list[int]:
    data = await gql.ok(RECS, {"u": user, "x": exclude})
    return [r["movie"]["id"] for r in data["recommendations"]]


async def feedback(gql: FastClient, query: str, movie: int, token: str | None) -> Any:
    data = await gql.ok(query, {"m": movie}, token=token)
    return next(iter(data.values()))


async def test_hiding_needs_a_token_and_a_known_movie(gql: FastClient) -> None:
    for query in (HIDE, UNHIDE):
        refused = await feedback(gql, query, FAMILY[0], None)
        assert refused["__typename"] == "Unauthenticated"
        assert refused["code"] == "UNAUTHENTICATED"
        bad = await feedback(gql, query, FAMILY[0], "rgq_not-a-token")
        assert bad["__typename"] == "Unauthenticated"
    _, token = await gql.sign_up()
    missing = await feedback(gql, HIDE, 999_999, token)
    assert missing == {
        "__typename": "MovieNotFound",
        "message": "movie 999999 does not exist",
        "movieId": 999_999,
    }


async def test_a_hidden_movie_leaves_recommendations_and_similar_until_unhidden(
    gql: FastClient,
) -> None:
    user, token = await family_fan(gql)
    before = await recommended(gql, user)
    assert len(before) == 10
    target = before[0]

    hidden = await feedback(gql, HIDE, target, token)
    assert hidden["__typename"] == "MovieFeedbackSaved"
    assert (hidden["hidden"], hidden["changed"]) == (True, True)
    assert (hidden["movie"]["id"], hidden["user"]["id"]) == (target, user)
    again = await feedback(gql, HIDE, target, token)
    assert (again["hidden"], again["changed"]) == (True, False)

    after = await recommended(gql, user)
    assert target not in after
    assert len(after) == 10
    assert after[:9] == before[1:]  # the rest moves up; nothing else changes
    seed = next(m for m in FAMILY if m != target)
    as_viewer = await gql.ok(SIMILAR, {"m": seed}, token=token)
    assert target not in [h["movie"]["id"] for h in as_viewer["similarMovies"]]

    shown = await feedback(gql, UNHIDE, target, token)
    assert (shown["hidden"], shown["changed"]) == (False, True)
    assert await recommended(gql, user) == before


async def test_excluded_movies_are_left_out_up_to_the_bound(gql: FastClient) -> None:
    user, _ = await family_fan(gql)
    before = await recommended(gql, user)
    skipped = before[:3]
    after = await recommended(gql, user, skipped + list(range(900_000, 900_000 + 497)))
    assert not set(skipped) & set(after)
    assert after[:7] == before[3:]
    answer = await gql.run(RECS, {"u": user, "x": list(range(1, MAX_EXCLUDED + 2))})
    assert answer.codes == ["INVALID_ARGUMENT"], answer.errors
    assert answer.errors[0]["extensions"]["field"] == "excludeMovieIds"
    assert answer.data is None  # refused before anything ran


async def test_diversity_is_a_share_from_0_to_1(gql: FastClient) -> None:
    query = """query ($d: Float) { recommendations(userId: 1, first: 5, diversity: $d) {
      movie { id } } }"""
    for bad in (-0.1, 1.5):
        answer = await gql.run(query, {"d": bad})
        assert answer.codes == ["INVALID_ARGUMENT"], answer.errors
        assert answer.errors[0]["extensions"]["field"] == "diversity"
    plain = (await gql.ok(query, {"d": 0.0}))["recommendations"]
    varied = (await gql.ok(query, {"d": 1.0}))["recommendations"]
    assert len(plain) == len(varied) == 5
    assert varied[0] == plain[0]  # MMR's first pick is the most relevant movie


async def test_genre_match_all_keeps_movies_of_every_genre(gql: FastClient) -> None:
    query = """query ($g: [String!], $m: GenreMatch!) { recommendations(userId: 987654,
      first: 5, genres: $g, genreMatch: $m, diversity: 0) { movie { id genres } } }"""
    either = (await gql.ok(query, {"g": ["Comedy", "Horror"], "m": "ANY"}))["recommendations"]
    assert len(either) == 5
    assert all({"Comedy", "Horror"} & set(r["movie"]["genres"]) for r in either)
    # no generated movie is both a comedy and a horror film; every family movie is both
    # animated and a comedy
    none = await gql.ok(query, {"g": ["Comedy", "Horror"], "m": "ALL"})
    assert none["recommendations"] == []
    both = (await gql.ok(query, {"g": ["Animation", "Comedy"], "m": "ALL"}))["recommendations"]
    assert len(both) == 5
    assert all(r["movie"]["id"] in FAMILY for r in both)
