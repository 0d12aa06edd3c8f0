"""Known-answer tests for the rating and time matrices and TF-IDF (the arms: tests/recsys)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_gql.recsys.arms.als import confidence_matrix
from recsys_gql.recsys.vocab import IdVocab
from training.config import TfidfConfig
from training.fit import fit_tfidf, rating_matrix


def test_rating_matrix_places_each_rating() -> None:
    ratings = pd.DataFrame(
        {
            "userId": [10, 10, 30],
            "movieId": [7, 3, 7],
            "rating": np.float32([4.0, 2.5, 1.0]),
            "timestamp": [1_700_000_000, 1_600_000_000, 1_650_000_000],
        }
    )
    users, items = IdVocab.from_values([30, 10]), IdVocab.from_values([3, 7, 9])
    matrix = rating_matrix(ratings, users, items)
    assert matrix.shape == (2, 3)
    assert matrix.toarray().tolist() == [[2.5, 4.0, 0.0], [0.0, 1.0, 0.0]]
    times = rating_matrix(ratings, users, items, "timestamp")
    assert times.dtype == np.float64
    # the same pattern in the same order: times.data[k] is the time of matrix.data[k]
    np.testing.assert_array_equal(times.indptr, matrix.indptr)
    np.testing.assert_array_equal(times.indices, matrix.indices)
    assert times.data.tolist() == [1_600_000_000, 1_700_000_000, 1_650_000_000]
    assert confidence_matrix(matrix, "binary").data.tolist() == [1.0, 1.0, 1.0]
    assert confidence_matrix(matrix, "rating").data.tolist() == [2.5, 4.0, 1.0]
    np.testing.assert_allclose(confidence_matrix(matrix, "log").data, np.log1p([2.5, 4.0, 1.0]))
    with pytest.raises(ValueError, match="unknown weighting"):
        confidence_matrix(matrix, "squared")


def test_tfidf_rows_are_unit_length_and_separate_topics() -> None:
    texts = ["space ship alien crew", "space alien invasion crew", "romance wedding love story"]
    matrix = fit_tfidf(texts, TfidfConfig(min_df=1, max_features=100))
    np.testing.assert_allclose(np.sqrt(matrix.multiply(matrix).sum(axis=1)).A1, 1.0, rtol=1e-6)
    similarity = (matrix @ matrix.T).toarray()
    assert similarity[0, 1] > similarity[0, 2]
