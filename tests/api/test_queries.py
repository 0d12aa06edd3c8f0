"""Every query through real HTTP requests to a uvicorn on loopback (SQLite and Postgres)."""

from __future__ import annotations

import httpx

from tests.api.conftest import Server

MOVIE = """query ($id: Int!) { movie(id: $id) {
  id title year genres overview tmdbId imdbId ratingsCount averageRating
  similar(first: 5) { similarity movie { id title } } } }"""


def error_code(body: dict) -> str:  # type: ignore[type-arg]
    return str(body["errors"][0]["extensions"]["code"])


def test_movie_by_id(api: Server) -> None:
    movie = api.graphql(MOVIE, {"id": 1})["data"]["movie"]
    assert movie["title"] == "Toy Story"
    assert movie["year"] == 1995
    assert "Animation" in movie["genres"]
    assert movie["tmdbId"] == 862
    assert movie["imdbId"] == "0114709"
    assert "Woody" in movie["overview"]
    assert movie["ratingsCount"] >= 215
    assert 3.0 < movie["averageRating"] < 4.5
    assert 3114 in [s["movie"]["id"] for s in movie["similar"]]
    assert api.graphql(MOVIE, {"id": 999_999_999})["data"] == {"movie": None}


def test_paging_movies_to_the_end(api: Server) -> None:
    query = """query ($after: String) { movies(search: "STAR WARS", first: 2, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id title } } } }"""
    seen, after, pages = [], None, 0
    while True:
        page = api.graphql(query, {"after": after})["data"]["movies"]
        seen += [edge["node"]["title"] for edge in page["edges"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    assert len(seen) == page["totalCount"] >= 6
    assert len(set(seen)) == len(seen)
    assert pages == (len(seen) + 1) // 2
    assert all("star wars" in title.lower() for title in seen)


def test_movie_filters(api: Server) -> None:
    query = """{ movies(genres: ["Animation"], yearFrom: 1995, yearTo: 1996, first: 100) {
      totalCount edges { node { year genres } } } }"""
    page = api.graphql(query)["data"]["movies"]
    assert page["totalCount"] == len(page["edges"]) > 5
    for edge in page["edges"]:
        assert 1995 <= edge["node"]["year"] <= 1996
        assert "Animation" in edge["node"]["genres"]


def test_out_of_range_first_and_bad_cursors_are_coded_errors(api: Server) -> None:
    for query in (
        "{ movies(first: 0) { totalCount } }",
        "{ movies(first: 101) { totalCount } }",
        "{ recommendations(userId: 1, first: 500) { score } }",
        "{ similarMovies(movieId: 1, first: -1) { similarity } }",
        '{ movies(after: "not-a-cursor") { totalCount } }',
        '{ recommendations(userId: 1, genres: ["Nope"]) { score } }',
        "{ recommendations(userId: 1, alpha: 2.0) { score } }",
    ):
        body = api.graphql(query, status=400)
        assert error_code(body) == "INVALID_ARGUMENT", (query, body)
        assert body["data"] is None
    body = api.graphql("{ similarMovies(movieId: 999999999) { similarity } }", status=200)
    assert error_code(body) == "MOVIE_NOT_FOUND"
    body = api.graphql('{ searchMovies(query: "   ") { score } }', status=400)
    assert error_code(body) == "INVALID_ARGUMENT"
    body = api.graphql("{ movie(id: 1) { nope } }", status=400)
    assert error_code(body) == "GRAPHQL_VALIDATION_FAILED"
    for broken in ("{ movie(id: 1) { title }", "{ " + "genres " * 2100 + "}"):  # > 2,000 tokens
        body = api.graphql(broken, status=400)
        assert error_code(body) == "GRAPHQL_PARSE_FAILED", body
        assert body["errors"][0]["locations"][0]["line"] == 1  # where it broke, for GraphiQL


def test_genres_popular_similar_and_search(api: Server) -> None:
    genres = api.graphql("{ genres }")["data"]["genres"]
    assert "Animation" in genres
    assert genres == sorted(genres)
    popular = api.graphql('{ popularMovies(first: 5, genres: ["Animation"]) { title genres } }')
    assert all("Animation" in m["genres"] for m in popular["data"]["popularMovies"])
    similar = api.graphql("{ similarMovies(movieId: 1, first: 5) { similarity movie { id } } }")
    hits = similar["data"]["similarMovies"]
    assert 3114 in [h["movie"]["id"] for h in hits]
    assert [h["similarity"] for h in hits] == sorted((h["similarity"] for h in hits), reverse=True)
    search = api.graphql(
        '{ searchMovies(query: "toys come to life, a cowboy doll and a space ranger", first: 5)'
        " { score movie { id title } } }"
    )
    titles = [h["movie"]["title"] for h in search["data"]["searchMovies"]]
    assert any(title.startswith("Toy Story") for title in titles), titles


def test_recommendations_for_a_known_user(api: Server) -> None:
    query = """{ user(id: 1) { id ratingsCount
      recommendations(first: 10) { score collabScore contentScore movie { id title }
        explanation { summary because { id } } } } }"""
    user = api.graphql(query)["data"]["user"]
    assert user["ratingsCount"] >= 232
    recs = user["recommendations"]
    assert len(recs) == 10
    rated = api.graphql(
        "{ user(id: 1) { ratings(first: 100) { totalCount edges { node { movie { id } } } } } }"
    )
    rated_ids = {e["node"]["movie"]["id"] for e in rated["data"]["user"]["ratings"]["edges"]}
    assert not rated_ids & {r["movie"]["id"] for r in recs[:10]} or len(rated_ids) == 100
    for rec in recs:
        assert 0.0 <= rec["score"] <= 1.0
        assert rec["explanation"]["summary"]


def test_health_and_probes(api: Server) -> None:
    health = api.graphql(
        "{ health { ok runId movies users engineLoaded databaseConnected"
        " arms { arm serving reason } rankingStageMissing } }"
    )
    assert health["data"]["health"]["ok"] is True
    assert health["data"]["health"]["movies"] == 9742
    assert health["data"]["health"]["arms"] == [
        {"arm": arm, "serving": True, "reason": None}
        for arm in ("COLLABORATIVE", "EASE", "CONTENT", "POPULARITY")
    ]
    assert health["data"]["health"]["rankingStageMissing"] is None
    assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{api.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["run"] == health["data"]["health"]["runId"]


def test_graphiql_and_get_queries(api: Server) -> None:
    page = httpx.get(f"{api.url}/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    response = httpx.get(f"{api.url}/graphql", params={"query": "{ movie(id: 1) { title } }"})
    assert response.json()["data"]["movie"]["title"] == "Toy Story"


def test_out_of_range_cursors_and_plain_text_errors(api: Server) -> None:
    huge = "bW92aWU6OTIyMzM3MjAzNjg1NDc3NTgwOA=="  # "movie:9223372036854775808"
    body = api.graphql(f'{{ movies(after: "{huge}") {{ totalCount }} }}', status=400)
    assert error_code(body) == "INVALID_ARGUMENT"
    response = httpx.get(
        f"{api.url}/graphql", params={"query": "mutation { signUp { token } }"}, timeout=30
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
