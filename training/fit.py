"""The rating matrices the arms are fitted on, and the TF-IDF baseline of the evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_gql.recsys.arm import Catalog, TrainingSet
from recsys_gql.recsys.vocab import IdVocab
from training.config import TfidfConfig


def rating_matrix(
    ratings: pd.DataFrame, users: IdVocab, items: IdVocab, column: str = "rating"
) -> sp.csr_matrix:
    """The users x movies CSR matrix of ``column`` (the ratings, float32, by default; the
    timestamps, float64, with ``column="timestamp"``), never dense. Both come out with the
    same pattern in the same order, as (user, movie) pairs are unique."""
    rows = users.indices(ratings["userId"].to_numpy())
    cols = items.indices(ratings["movieId"].to_numpy())
    dtype = np.float32 if column == "rating" else np.float64
    values = ratings[column].to_numpy(dtype=dtype)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(users), len(items)), dtype=dtype)
    matrix.sort_indices()
    return matrix


def fit_tfidf(texts: list[str], config: TfidfConfig) -> sp.csr_matrix:
    """L2-normalised TF-IDF rows (one per movie) over genres, overview and tags."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        max_features=config.max_features,
        min_df=config.min_df,
        ngram_range=(1, config.ngram_max),
        stop_words="english",
        sublinear_tf=True,
        dtype=np.float32,
    )
    return sp.csr_matrix(vectorizer.fit_transform(texts), dtype=np.float32)


def training_set(ratings: pd.DataFrame, users: IdVocab, catalog: Catalog) -> TrainingSet:
    """What the arms are fitted on: ``ratings`` (a MovieLens frame) as rating and time
    matrices over ``users`` and the catalog's movies."""
    return TrainingSet(
        rating_matrix(ratings, users, catalog.items),
        rating_matrix(ratings, users, catalog.items, "timestamp"),
        catalog,
    )
