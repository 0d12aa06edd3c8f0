"""Model fitting: the rating matrix, implicit ALS, popularity priors and the TF-IDF baseline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recsys_gql.recsys.vocab import IdVocab
from training.config import AlsConfig, PopularityConfig, TfidfConfig


def rating_matrix(ratings: pd.DataFrame, users: IdVocab, items: IdVocab) -> sp.csr_matrix:
    """The users x movies CSR matrix of explicit ratings (float32), never dense."""
    rows = users.indices(ratings["userId"].to_numpy())
    cols = items.indices(ratings["movieId"].to_numpy())
    values = ratings["rating"].to_numpy(dtype=np.float32)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(users), len(items)), dtype=np.float32)
    matrix.sort_indices()
    return matrix


def confidence(matrix: sp.csr_matrix, weighting: str) -> sp.csr_matrix:
    """Turn explicit ratings into implicit-feedback strengths (before ALS's ``alpha``)."""
    out = matrix.copy()
    if weighting == "binary":
        out.data = np.ones_like(out.data)
    elif weighting == "log":
        out.data = np.log1p(out.data).astype(np.float32)
    elif weighting != "rating":
        raise ValueError(f"unknown weighting {weighting!r}")
    return out


@dataclass(frozen=True)
class AlsFactors:
    """ALS output: one row per user and per movie."""

    user_factors: npt.NDArray[np.float32]
    item_factors: npt.NDArray[np.float32]


def fit_als(ratings: sp.csr_matrix, config: AlsConfig, *, show_progress: bool = True) -> AlsFactors:
    """Fit implicit's ALS on ``ratings`` (users x items) weighted by ``config``.

    BLAS is held to one thread while implicit runs its own threads: nested parallelism is
    slower and implicit warns about it.
    """
    from implicit.cpu.als import AlternatingLeastSquares

    # implicit checks the BLAS thread count in the constructor, so build it inside the limit.
    with threadpool_limits(limits=1, user_api="blas"):
        model = AlternatingLeastSquares(
            factors=config.factors,
            regularization=config.regularization,
            alpha=config.alpha,
            iterations=config.iterations,
            random_state=config.seed,
            num_threads=config.num_threads,
            calculate_training_loss=False,
        )
        model.fit(confidence(ratings, config.weighting), show_progress=show_progress)
    return AlsFactors(
        user_factors=np.ascontiguousarray(model.user_factors, dtype=np.float32),
        item_factors=np.ascontiguousarray(model.item_factors, dtype=np.float32),
    )


@dataclass(frozen=True)
class Popularity:
    """Per-movie rating count, mean and Bayesian-average score (row order of the vocab)."""

    count: npt.NDArray[np.int32]
    mean: npt.NDArray[np.float32]
    score: npt.NDArray[np.float32]


def popularity(ratings: sp.csr_matrix, config: PopularityConfig) -> Popularity:
    """Bayesian average: ``(sum + m * global_mean) / (count + m)`` with ``m = prior_count``.

    A movie with two 5-star ratings does not outrank one with hundreds of 4.5s; unrated movies
    sit at the global mean.
    """
    csc = ratings.tocsc()
    count = np.diff(csc.indptr).astype(np.int32)
    total = np.asarray(csc.sum(axis=0)).ravel()
    global_mean = float(ratings.data.mean()) if ratings.nnz else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    m = config.prior_count
    score = (total + m * global_mean) / (count + m)
    return Popularity(count=count, mean=mean.astype(np.float32), score=score.astype(np.float32))


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
