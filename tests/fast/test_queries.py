"""Every Query field over the tiny engine: answers, and the coded errors of bad arguments."""

from __future__ import annotations

import pytest

from tests.fast.conftest import FastClient
from tests.fast.movielens_gen import movie_ids, user_ids

FAMILY, HORROR = movie_ids()["family"], movie_ids()["horror"]
FAMILY_FAN = user_ids()["family"][0]

MOVIE = """query ($id: Int!) { movie(id: $id) {
  id title year genres overview tmdbId imdbId ratingsCount averageRating
  similar(first: 5) { similarity movie { id } } } }"""


async def test_movie_by_id_and_unknown(gql: FastClient) -> None:
    movie = (await gql.ok(MOVIE, {"id": 1}))["movie"]
    assert movie["title"] == "Family Story 1"
    assert movie["year"] == 1971
    assert movie["genres"] == ["Animation", "Children", "Comedy"]
    assert movie["tmdbId"] == 5001
    assert movie["imdbId"] == "0000001"
    assert "toy" in movie["overview"]
    assert movie["ratingsCount"] > 0
    assert 1.0 <= movie["averageRating"] <= 5.0
    assert {s["movie"]["id"] for s in movie["similar"]} <= set(FAMILY)
    assert await gql.ok(MOVIE, {"id": 999_999}) == {"movie": None}


async def test_paging_movies_to_the_end(gql: FastClient) -> None:
    query = """query ($after: String) { movies(search: "horror story", first: 7, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id title } } } }"""
    seen: list[int] = []
    after = None
    while True:
        page = (await gql.ok(query, {"after": after}))["movies"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    assert seen == sorted(HORROR)
    assert page["totalCount"] == len(HORROR)


async def test_movie_filters(gql: FastClient) -> None:
    query = """{ movies(genres: ["Sci-Fi"], yearFrom: 1980, yearTo: 1989, first: 100) {
      totalCount edges { node { year genres } } } }"""
    page = (await gql.ok(query))["movies"]
    assert page["totalCount"] == len(page["edges"]) == 10
    for edge in page["edges"]:
        assert 1980 <= edge["node"]["year"] <= 1989
        assert "Sci-Fi" in edge["node"]["genres"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("{ movies(first: 0) { totalCount } }", "first"),
        ("{ movies(first: 101) { totalCount } }", "first"),
        ('{ movies(after: "not-a-cursor") { totalCount } }', "after"),
        ("{ movies(yearFrom: 2000, yearTo: 1990) { totalCount } }", "yearFrom"),
        ("{ recommendations(userId: 1, first: 500) { score } }", "first"),
        ('{ recommendations(userId: 1, genres: ["Nope"]) { score } }', "genres"),
        ("{ recommendations(userId: 1, alpha: 2.0) { score } }", "alpha"),
        ("{ similarMovies(movieId: 1, first: -1) { similarity } }", "first"),
        ('{ searchMovies(query: "   ") { score } }', "query"),
        ("{ popularMovies(first: 0) { id } }", "first"),
        ('{ user(id: 1) { ratings(after: "bW92aWU6MQ==") { totalCount } } }', "after"),
    ],
)
async def test_a_bad_argument_is_invalid_argument_naming_it(
    gql: FastClient, query: str, field: str
) -> None:
    answer = await gql.run(query)
    assert answer.codes == ["INVALID_ARGUMENT"], answer.errors
    assert answer.errors[0]["extensions"]["field"] == field


async def test_unknown_movie_for_similar_is_not_found(gql: FastClient) -> None:
    answer = await gql.run("{ similarMovies(movieId: 999999) { similarity } }")
    assert answer.codes == ["MOVIE_NOT_FOUND"]


async def test_parse_and_validation_errors_are_coded(gql: FastClient) -> None:
    assert (await gql.run("{ movie(id: 1) { nope } }")).codes == ["GRAPHQL_VALIDATION_FAILED"]
    assert (await gql.run("{ movie(id: 1) { title }")).codes == ["GRAPHQL_PARSE_FAILED"]
    too_long = "{ " + "genres " * 2100 + "}"  # over max_query_tokens
    assert (await gql.run(too_long)).codes == ["GRAPHQL_PARSE_FAILED"]


async def test_genres_are_sorted_and_complete(gql: FastClient) -> None:
    genres = (await gql.ok("{ genres }"))["genres"]
    assert genres == sorted(genres)
    assert {"Animation", "Horror", "Sci-Fi", "Romance"} <= set(genres)


async def test_user_and_viewer(gql: FastClient) -> None:
    assert await gql.ok("{ user(id: 0) { id } }") == {"user": None}
    user = (await gql.ok("{ user(id: 1) { id ratingsCount } }"))["user"]
    assert user["id"] == 1
    assert user["ratingsCount"] >= 20
    assert await gql.ok("{ viewer { id } }") == {"viewer": None}
    me, token = await gql.sign_up()
    assert await gql.ok("{ viewer { id } }", token=token) == {"viewer": {"id": me}}
    assert await gql.ok("{ viewer { id } }", token="rgq_unknown") == {"viewer": None}


async def test_a_users_ratings_page_to_the_end(gql: FastClient) -> None:
    query = """query ($after: String) { user(id: 1) { ratingsCount
      ratings(first: 9, after: $after) { totalCount pageInfo { hasNextPage endCursor }
        edges { node { rating movie { id } user { id } } } } } }"""
    movies: list[int] = []
    after = None
    while True:
        user = (await gql.ok(query, {"after": after}))["user"]
        edges = user["ratings"]["edges"]
        movies += [e["node"]["movie"]["id"] for e in edges]
        assert all(e["node"]["user"] == {"id": 1} for e in edges)
        if not user["ratings"]["pageInfo"]["hasNextPage"]:
            break
        after = user["ratings"]["pageInfo"]["endCursor"]
    assert movies == sorted(movies)
    assert len(movies) == user["ratingsCount"] == user["ratings"]["totalCount"]


async def test_recommendations_follow_the_planted_taste(gql: FastClient) -> None:
    query = """query ($u: Int!) { recommendations(userId: $u, first: 10, diversity: 0) {
      score collabScore contentScore source armScores { arm score }
      movie { id } explanation { summary because { id } arms { arm share }
        contributions { arm share movie { id } } } } }"""
    recs = (await gql.ok(query, {"u": FAMILY_FAN}))["recommendations"]
    assert len(recs) == 10
    assert [r["source"] for r in recs] == ["RANKER"] * 10
    assert [r["score"] for r in recs] == sorted((r["score"] for r in recs), reverse=True)
    in_family = sum(r["movie"]["id"] in FAMILY for r in recs)
    assert in_family >= 8, recs
    rated = await gql.ok(
        "query ($u: Int!) { user(id: $u) { ratings(first: 100) {"
        " edges { node { movie { id } } } } } }",
        {"u": FAMILY_FAN},
    )
    rated_ids = {e["node"]["movie"]["id"] for e in rated["user"]["ratings"]["edges"]}
    assert not rated_ids & {r["movie"]["id"] for r in recs}  # excludeRated by default
    for rec in recs:
        assert 0.0 <= rec["score"] <= 1.0
        assert {a["arm"] for a in rec["armScores"]} == {
            "COLLABORATIVE", "EASE", "CONTENT", "POPULARITY",
        }  # fmt: skip
        assert {a["arm"]: a["score"] for a in rec["armScores"]}["COLLABORATIVE"] == rec[
            "collabScore"
        ]
        shares = [a["share"] for a in rec["explanation"]["arms"]]
        assert sum(shares) == pytest.approx(1, abs=1e-4)
        assert shares == sorted(shares, reverse=True)
        assert {c["arm"] for c in rec["explanation"]["contributions"]} <= {
            "COLLABORATIVE", "EASE", "CONTENT",
        }  # fmt: skip
        assert {m["id"] for m in rec["explanation"]["because"]} <= rated_ids
        assert rec["explanation"]["summary"]


async def test_alpha_blends_and_user_field_agrees(gql: FastClient) -> None:
    query = """query ($u: Int!) { user(id: $u) { recommendations(first: 5, alpha: 0.7) {
      source movie { id } explanation { arms { arm share } } } } }"""
    recs = (await gql.ok(query, {"u": FAMILY_FAN}))["user"]["recommendations"]
    assert [r["source"] for r in recs] == ["BLEND"] * 5
    assert {a["arm"]: a["share"] for a in recs[0]["explanation"]["arms"]} == {
        "COLLABORATIVE": pytest.approx(0.7), "CONTENT": pytest.approx(0.3),
    }  # fmt: skip
    top = """query ($u: Int!) { recommendations(userId: $u, first: 5, alpha: 0.7) {
      movie { id } } }"""
    same = (await gql.ok(top, {"u": FAMILY_FAN}))["recommendations"]
    assert [r["movie"] for r in same] == [r["movie"] for r in recs]


async def test_a_cold_user_gets_popular_movies_of_the_genre(gql: FastClient) -> None:
    query = """{ recommendations(userId: 987654, first: 5, genres: ["Horror"]) {
      source movie { id genres } explanation { summary because { id } } } }"""
    recs = (await gql.ok(query))["recommendations"]
    assert len(recs) == 5
    assert all(r["movie"]["id"] in HORROR for r in recs)
    assert [r["source"] for r in recs] == ["POPULARITY"] * 5
    assert all(r["explanation"]["because"] == [] for r in recs)
    assert "Popular" in recs[0]["explanation"]["summary"]


async def test_similar_search_and_popular(gql: FastClient) -> None:
    hits = (await gql.ok("{ similarMovies(movieId: 60, first: 5) { similarity movie { id } } }"))[
        "similarMovies"
    ]
    assert len(hits) == 5
    assert 60 not in {h["movie"]["id"] for h in hits}
    assert {h["movie"]["id"] for h in hits} <= set(HORROR)
    assert [h["similarity"] for h in hits] == sorted((h["similarity"] for h in hits), reverse=True)
    found = (
        await gql.ok(
            '{ searchMovies(query: "a vampire terrifies a town at night", first: 5) '
            "{ score movie { id } } }"
        )
    )["searchMovies"]
    assert len(found) == 5
    assert all(h["movie"]["id"] in HORROR for h in found), found
    popular = (await gql.ok('{ popularMovies(first: 5, genres: ["Romance"]) { id genres } }'))[
        "popularMovies"
    ]
    assert len(popular) == 5
    assert all("Romance" in m["genres"] for m in popular)


async def test_health_names_the_served_run(gql: FastClient) -> None:
    health = (
        await gql.ok(
            "{ health { ok runId movies users ratings engineLoaded databaseConnected "
            "searchModelLoaded arms { arm serving reason } rankingStageMissing } }"
        )
    )["health"]
    assert health["ok"] is True
    assert health["databaseConnected"] is True
    assert health["movies"] == 200
    assert health["users"] == 300
    assert health["runId"] == gql.state["reloader"].served.run_id
    assert health["arms"] == [
        {"arm": arm, "serving": True, "reason": None}
        for arm in ("COLLABORATIVE", "EASE", "CONTENT", "POPULARITY")
    ]
    assert health["rankingStageMissing"] is None


async def test_rate_limit_reports_the_charge(gql: FastClient) -> None:
    answer = await gql.run("{ rateLimit { cost limit remaining queryCost maxQueryCost } }")
    assert not answer.errors
    assert answer.data is not None
    limit = answer.data["rateLimit"]
    assert limit["cost"] == 1
    assert limit["limit"] == 100000
    assert 0 <= limit["remaining"] < 100000
    assert limit["maxQueryCost"] == 10_000
    assert limit["queryCost"] >= 1


async def test_a_failing_field_does_not_break_siblings_sharing_a_loader(gql: FastClient) -> None:
    """graphql-core cancels siblings of a failed non-null field; a sibling waiting on the same
    DataLoader key must not turn that into an unexpected error (found by the schema fuzzer)."""
    answer = await gql.run(  # a cursor from another listing fails in its resolver
        "{ a: user(id: 1) { ratingsCount } "
        'b: user(id: 1) { ratingsCount ratings(after: "bW92aWU6MQ==") { totalCount } } }'
    )
    assert answer.data is not None
    assert answer.data["a"]["ratingsCount"] >= 20
    assert answer.data["b"] is None
    assert answer.codes == ["INVALID_ARGUMENT"]


async def test_explanations_asked_through_fragments(gql: FastClient) -> None:
    """The engine skips explaining when no explanation is selected; fragments still ask."""
    query = """query ($u: Int!) {
      plain: recommendations(userId: $u, first: 5) { score movie { id } }
      spread: recommendations(userId: $u, first: 5) { ...Why }
      inline: recommendations(userId: $u, first: 5) { ... on Recommendation {
        explanation { because { id } } } } }
    fragment Why on Recommendation { movie { id } explanation { because { id } } }"""
    data = await gql.ok(query, {"u": FAMILY_FAN})
    assert [r["movie"]["id"] for r in data["spread"]] == [r["movie"]["id"] for r in data["plain"]]
    for key in ("spread", "inline"):
        assert all(r["explanation"]["because"] for r in data[key]), data[key]
