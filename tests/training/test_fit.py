"""Known-answer tests for the rating matrix, ALS, the popularity prior and TF-IDF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_gql.movielens import load_movielens
from recsys_gql.recsys.vocab import IdVocab
from tests.conftest import BLOCK_A, BLOCK_B, USERS_A, USERS_B
from training.config import AlsConfig, PopularityConfig, TfidfConfig
from training.fit import confidence, fit_als, fit_tfidf, popularity, rating_matrix


def test_rating_matrix_places_each_rating() -> None:
    ratings = pd.DataFrame(
        {"userId": [10, 10, 30], "movieId": [7, 3, 7], "rating": np.float32([4.0, 2.5, 1.0])}
    )
    users, items = IdVocab.from_values([30, 10]), IdVocab.from_values([3, 7, 9])
    matrix = rating_matrix(ratings, users, items)
    assert matrix.shape == (2, 3)
    assert matrix.toarray().tolist() == [[2.5, 4.0, 0.0], [0.0, 1.0, 0.0]]
    assert confidence(matrix, "binary").data.tolist() == [1.0, 1.0, 1.0]
    assert confidence(matrix, "rating").data.tolist() == [2.5, 4.0, 1.0]
    np.testing.assert_allclose(confidence(matrix, "log").data, np.log1p([2.5, 4.0, 1.0]))


def test_als_recovers_a_planted_block_structure(tiny_movielens: Path) -> None:
    data = load_movielens(tiny_movielens)
    users = IdVocab.from_values(data.ratings["userId"])
    items = IdVocab.from_values(data.movies["movieId"])
    matrix = rating_matrix(data.ratings, users, items)
    # two planted tastes = a rank-2 signal, so two factors must find it
    factors = fit_als(
        matrix, AlsConfig(factors=2, iterations=30, regularization=1.0), show_progress=False
    )
    scores = factors.user_factors @ factors.item_factors.T
    a_cols, b_cols = items.indices(BLOCK_A), items.indices(BLOCK_B)
    for user_ids, own, other in ((USERS_A, a_cols, b_cols), (USERS_B, b_cols, a_cols)):
        for user in user_ids:
            row = users.index(user)
            assert row is not None
            seen = set(matrix[row].indices.tolist())
            unseen_own = [c for c in own if c not in seen]
            # every unseen movie of the user's own block outscores every movie of the other
            assert scores[row, unseen_own].min() > scores[row, other].max()


def test_als_is_reproducible_with_a_seed(tiny_movielens: Path) -> None:
    data = load_movielens(tiny_movielens)
    users = IdVocab.from_values(data.ratings["userId"])
    items = IdVocab.from_values(data.movies["movieId"])
    matrix = rating_matrix(data.ratings, users, items)
    config = AlsConfig(factors=4, iterations=5, num_threads=1)
    one = fit_als(matrix, config, show_progress=False)
    two = fit_als(matrix, config, show_progress=False)
    np.testing.assert_allclose(one.item_factors, two.item_factors, rtol=1e-5)


def test_popularity_is_a_bayesian_average() -> None:
    ratings = pd.DataFrame(
        {
            "userId": [1, 2, 1, 2, 3, 4],
            "movieId": [1, 1, 2, 2, 2, 2],
            "rating": np.float32([5.0, 5.0, 4.0, 4.0, 4.0, 4.0]),
        }
    )
    users, items = IdVocab.from_values([1, 2, 3, 4]), IdVocab.from_values([1, 2, 3])
    prior = popularity(rating_matrix(ratings, users, items), PopularityConfig(prior_count=2.0))
    global_mean = 26.0 / 6.0
    assert prior.count.tolist() == [2, 4, 0]
    np.testing.assert_allclose(prior.mean, [5.0, 4.0, 0.0])
    np.testing.assert_allclose(
        prior.score,
        [(10 + 2 * global_mean) / 4, (16 + 2 * global_mean) / 6, global_mean],
        rtol=1e-6,
    )


def test_tfidf_rows_are_unit_length_and_separate_topics() -> None:
    texts = ["space ship alien crew", "space alien invasion crew", "romance wedding love story"]
    matrix = fit_tfidf(texts, TfidfConfig(min_df=1, max_features=100))
    np.testing.assert_allclose(np.sqrt(matrix.multiply(matrix).sum(axis=1)).A1, 1.0, rtol=1e-6)
    similarity = (matrix @ matrix.T).toarray()
    assert similarity[0, 1] > similarity[0, 2]


def test_unknown_weighting_is_refused() -> None:
    matrix = rating_matrix(
        pd.DataFrame({"userId": [1], "movieId": [1], "rating": np.float32([3.0])}),
        IdVocab.from_values([1]),
        IdVocab.from_values([1]),
    )
    with pytest.raises(ValueError, match="unknown weighting"):
        confidence(matrix, "squared")
