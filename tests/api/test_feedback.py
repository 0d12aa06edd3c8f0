"""Negative feedback and list controls through real HTTP: hideMovie/unhideMovie (viewer
only, persisted, effective in recommendations, similar lists and search, also through the
recommendation memo), excludeMovieIds, diversity and genres with any/all."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

from recsys_gql.recsys.diversity import intra_list_diversity
from recsys_gql.settings import Settings
from tests.api.conftest import Server, running, sign_up

HIDE = """mutation ($m: Int!) { hideMovie(movieId: $m) { __typename
  ... on MovieFeedbackSaved { message hidden changed movie { id } user { id } }
  ... on MovieNotFound { movieId } ... on Unauthenticated { message code } } }"""
UNHIDE = HIDE.replace("hideMovie", "unhideMovie")
RATE = """mutation ($u: Int!, $m: Int!) {
  rateMovie(input: {userId: $u, movieId: $m, rating: 5}) { __typename } }"""
RECS = """query ($u: Int!, $n: Int = 10, $x: [Int!], $d: Float, $g: [String!],
  $match: GenreMatch = ANY) {
  recommendations(userId: $u, first: $n, excludeMovieIds: $x, diversity: $d, genres: $g,
                  genreMatch: $match) { movie { id genres } } }"""
SIMILAR = """query ($m: Int!) { similarMovies(movieId: $m, first: 10) { movie { id } }
  movie(id: $m) { similar(first: 10) { movie { id } } } }"""
SEARCH = """query ($q: String!) { searchMovies(query: $q, first: 10) { movie { id } } }"""
PIXAR = [1, 2355, 3114, 4886, 6377]


def hide(api: Server, movie: int, token: str | None, query: str = HIDE) -> dict[str, Any]:
    data = api.graphql(query, {"m": movie}, token=token)["data"]
    payload: dict[str, Any] = data["hideMovie" if query == HIDE else "unhideMovie"]
    return payload


def recs(api: Server, user: int, **variables: Any) -> list[int]:
    body = api.graphql(RECS, {"u": user, **variables})
    assert "errors" not in body, body
    return [r["movie"]["id"] for r in body["data"]["recommendations"]]


def similar(api: Server, movie: int, token: str | None) -> tuple[list[int], list[int]]:
    data = api.graphql(SIMILAR, {"m": movie}, token=token)["data"]
    top = [s["movie"]["id"] for s in data["similarMovies"]]
    nested = [s["movie"]["id"] for s in data["movie"]["similar"]]
    return top, nested


def search(api: Server, query: str, token: str | None) -> list[int]:
    hits = api.graphql(SEARCH, {"q": query}, token=token)["data"]["searchMovies"]
    return [h["movie"]["id"] for h in hits]


def a_fan(api: Server) -> tuple[int, str]:
    user, token = sign_up(api)
    for movie in PIXAR:
        assert (
            api.graphql(RATE, {"u": user, "m": movie}, token=token)["data"]["rateMovie"][
                "__typename"
            ]
            == "RatingSaved"
        )
    return user, token


def test_hiding_needs_a_token_and_a_real_movie(api: Server) -> None:
    refused = hide(api, 1, None)
    assert refused["__typename"] == "Unauthenticated"
    assert "hideMovie needs `Authorization: Bearer <token>`" in refused["message"]
    bad_token = hide(api, 1, "rgq_not-a-real-token")
    assert bad_token["__typename"] == "Unauthenticated"
    assert "unknown or revoked" in bad_token["message"]
    assert hide(api, 1, None, UNHIDE)["__typename"] == "Unauthenticated"
    _, token = sign_up(api)
    assert hide(api, 999_999_999, token) == {"__typename": "MovieNotFound", "movieId": 999_999_999}


def test_a_hidden_movie_never_comes_back_until_unhidden(api: Server) -> None:
    user, token = a_fan(api)
    before = recs(api, user)
    assert recs(api, user) == before  # the memo holds the list now
    target = before[0]
    saved = hide(api, target, token)
    assert saved["__typename"] == "MovieFeedbackSaved"
    assert (saved["hidden"], saved["changed"], saved["user"]["id"]) == (True, True, user)
    assert hide(api, target, token)["changed"] is False  # idempotent
    after = recs(api, user)
    assert target not in after
    assert len(after) == 10
    for first in (1, 50, 100):
        assert target not in recs(api, user, n=first)
    restored = hide(api, target, token, UNHIDE)
    assert (restored["hidden"], restored["changed"]) == (False, True)
    assert recs(api, user) == before


def test_hidden_movies_leave_the_viewers_similar_lists_and_search_only(api: Server) -> None:
    _, token = sign_up(api)
    top, nested = similar(api, 1, token)
    assert top == nested
    assert len(top) == 10
    hits = search(api, "toys come alive when nobody is watching", token)
    assert 1 in hits
    for movie in [top[0], top[3], 1]:
        hide(api, movie, token)
    mine_top, mine_nested = similar(api, 1, token)
    assert mine_top == mine_nested
    assert len(mine_top) == 10
    assert mine_top[:8] == [m for m in top if m not in (top[0], top[3])]
    mine_hits = search(api, "toys come alive when nobody is watching", token)
    assert 1 not in mine_hits
    assert len(mine_hits) == 10
    # others (and anonymous readers) still see them
    assert similar(api, 1, None)[0] == top
    _, other = sign_up(api)
    assert 1 in search(api, "toys come alive when nobody is watching", other)
    hide(api, 1, token, UNHIDE)
    assert 1 in search(api, "toys come alive when nobody is watching", token)


def test_hides_survive_a_server_restart(api_settings: Settings) -> None:
    with running(api_settings) as first:
        user, token = a_fan(first)
        target = recs(first, user)[0]
        assert hide(first, target, token)["changed"] is True
    with running(api_settings) as second:
        assert target not in recs(second, user)
        assert hide(second, target, token)["changed"] is False


def test_exclude_movie_ids_is_honoured_and_bounded(api: Server) -> None:
    user, _ = a_fan(api)
    before = recs(api, user, n=20)
    shown = before[:10]
    after = recs(api, user, x=shown)
    assert len(after) == 10
    assert not set(after) & set(shown)
    assert not set(recs(api, user, x=list(range(1, 501)))) & set(range(1, 501))  # 500: allowed
    response = httpx.post(
        f"{api.url}/graphql",
        json={"query": RECS, "variables": {"u": user, "x": list(range(501))}},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "INVALID_ARGUMENT", "field": "excludeMovieIds"}
    assert "at most 500" in error["message"]


def test_diversity_is_bounded_and_raises_intra_list_diversity(api: Server) -> None:
    user, _ = a_fan(api)
    for bad in (-0.01, 1.01):
        response = httpx.post(
            f"{api.url}/graphql",
            json={"query": RECS, "variables": {"u": user, "d": bad}},
            timeout=30,
        )
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["extensions"] == {
            "code": "INVALID_ARGUMENT",
            "field": "diversity",
        }
    current = api.settings.artifacts_dir / "current"
    ids = np.load(current / "movie_ids.npy")
    embeddings = np.load(current / "embeddings.npy")
    row = {int(m): k for k, m in enumerate(ids)}

    def ild(movies: list[int]) -> float:
        return intra_list_diversity(embeddings[[row[m] for m in movies]])

    plain = recs(api, user, d=0.0)
    levels = [ild(recs(api, user, d=d)) for d in (0.0, 0.5, 1.0)]
    assert levels[0] == ild(plain)
    assert levels[0] < levels[1] < levels[2]
    assert recs(api, user, d=1.0)[0] == plain[0]  # the most relevant still leads


def test_genres_any_and_all(api: Server) -> None:
    user, _ = a_fan(api)
    body = api.graphql(RECS, {"u": user, "n": 30, "g": ["Horror", "Comedy"], "match": "ALL"})
    both = body["data"]["recommendations"]
    assert both
    assert all({"Horror", "Comedy"} <= set(r["movie"]["genres"]) for r in both)
    body = api.graphql(RECS, {"u": user, "n": 30, "g": ["Horror", "Comedy"]})
    either = body["data"]["recommendations"]
    assert all({"Horror", "Comedy"} & set(r["movie"]["genres"]) for r in either)
    assert any("Horror" not in r["movie"]["genres"] for r in either)  # any, not all
    unknown = api.graphql(RECS, {"u": user, "g": ["Space Western"], "match": "ALL"}, status=400)
    assert unknown["errors"][0]["extensions"] == {"code": "INVALID_ARGUMENT", "field": "genres"}
