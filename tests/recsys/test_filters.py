"""Genre filters with any/all semantics and excluded movies, on a hand-made genre matrix and
on the tiny engine (through ``recommend``)."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_gql.errors import InvalidParameter
from recsys_gql.recsys.content import SentenceEncoder
from recsys_gql.recsys.diversity import intra_list_diversity
from recsys_gql.recsys.engine import Engine
from recsys_gql.recsys.filters import (
    GenreMatch,
    exclude_movies,
    genre_columns,
    genre_mask,
)
from recsys_gql.recsys.vocab import IdVocab
from tests.conftest import BLOCK_A, BLOCK_B, USERS_A
from tests.recsys.test_engine import CONFIG, trained_engine

GENRES = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 0, 0]], dtype=np.uint8)
LOOKUP = {"drama": 0, "comedy": 1, "horror": 2}


def test_any_and_all() -> None:
    assert genre_mask(GENRES, [0, 1], GenreMatch.ANY).tolist() == [True, True, True, False]
    assert genre_mask(GENRES, [0, 1], GenreMatch.ALL).tolist() == [True, False, False, False]
    assert genre_mask(GENRES, [], GenreMatch.ALL).all()


def test_genre_names_are_case_and_blank_insensitive_and_unknown_ones_refused() -> None:
    assert genre_columns([" Comedy", "HORROR"], LOOKUP, list(LOOKUP)) == [1, 2]
    with pytest.raises(InvalidParameter, match="unknown genre 'Western'"):
        genre_columns(["Western"], LOOKUP, list(LOOKUP))


def test_exclusion_clears_known_ids_and_ignores_unknown_ones() -> None:
    mask = np.ones(3, dtype=bool)
    exclude_movies(mask, IdVocab(np.array([10, 20, 30], dtype=np.int64)), [20, 999])
    assert mask.tolist() == [True, False, True]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, sentence_encoder: SentenceEncoder) -> Engine:
    return trained_engine(tmp_path_factory.mktemp("filters"), sentence_encoder, CONFIG)


def movie_ids(recs: list) -> set[int]:  # type: ignore[type-arg]
    return {r.movie_id for r in recs}


def test_recommend_with_all_genres(engine: Engine) -> None:
    user = USERS_A[0]
    both = engine.recommend(user, 20, genres=["Animation", "Horror"], exclude_rated=False)
    assert movie_ids(both) == set(BLOCK_A + BLOCK_B)
    every = engine.recommend(
        user, 20, genres=["Animation", "Horror"], exclude_rated=False,
        genre_match=GenreMatch.ALL,
    )  # fmt: skip
    assert every == []  # no tiny movie is both
    family = engine.recommend(
        user, 20, genres=["animation", "Comedy"], exclude_rated=False, genre_match=GenreMatch.ALL
    )
    assert movie_ids(family) == set(BLOCK_A)


def test_recommend_never_returns_excluded_movies(engine: Engine) -> None:
    user = USERS_A[0]
    plain = engine.recommend(user, 5)
    shown = [r.movie_id for r in plain[:3]]
    after = engine.recommend(user, 5, exclude=shown)
    assert not movie_ids(after) & set(shown)
    assert len(after) == 5  # filled from further down (scores are scaled over candidates,
    # so the order of the rest may move)
    assert engine.recommend(user, 5, exclude=[999_999]) == plain  # unknown ids: ignored


def test_diversity_mixes_tastes_and_raises_ild(engine: Engine) -> None:
    user = USERS_A[0]  # rated six family films: four are left, then horror
    plain = engine.recommend(user, 4)
    varied = engine.recommend(user, 4, diversity=1.0)
    assert movie_ids(plain) <= set(BLOCK_A)
    assert movie_ids(varied) & set(BLOCK_B)
    assert plain[0].movie_id == varied[0].movie_id  # the most relevant always comes first

    def ild(recs: list) -> float:  # type: ignore[type-arg]
        rows = engine.movies.indices([r.movie_id for r in recs])
        return intra_list_diversity(engine.embeddings[rows])

    assert ild(varied) > ild(plain)
    assert engine.recommend(user, 4, diversity=0.0) == plain


def test_diversity_on_the_blend_and_with_explanations(engine: Engine) -> None:
    user = USERS_A[0]
    blended = engine.recommend(user, 4, alpha=0.5, diversity=1.0)
    assert movie_ids(blended) & set(BLOCK_B)
    assert movie_ids(engine.recommend(user, 4, alpha=0.5)) <= set(BLOCK_A)
    explained = engine.recommend(user, 4, diversity=1.0, explain_results=True)
    plain = engine.recommend(user, 4, diversity=1.0, explain_results=False)
    assert [r.movie_id for r in explained] == [r.movie_id for r in plain]
    assert all(r.leaning for r in explained)  # each pick is explained, from its own row
    assert explained[0].because  # the best pick is backed by the user's ratings


def test_bad_diversity_is_an_invalid_parameter(engine: Engine) -> None:
    with pytest.raises(InvalidParameter, match="diversity"):
        engine.recommend(USERS_A[0], 4, diversity=1.5)
