"""Top-k ranking metrics over a users x items score matrix.

Protocol helpers live here too: the temporal hold-out split and the top-k selection that
excludes each user's training movies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd


@dataclass(frozen=True)
class Metrics:
    """Means over evaluated users (coverage and popularity over all their lists)."""

    ndcg_at_10: float
    precision_at_10: float
    recall_at_20: float
    map_at_10: float
    coverage_at_10: float
    mean_popularity_at_10: float
    users: int

    def as_dict(self) -> dict[str, float]:
        """Plain floats, for JSON."""
        return {k: float(v) for k, v in asdict(self).items()}


def temporal_split(ratings: pd.DataFrame, holdout: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out each user's latest ``holdout`` share of ratings (at least one, by timestamp;
    ties broken by movieId so the split is deterministic)."""
    ordered = ratings.sort_values(["userId", "timestamp", "movieId"], kind="stable")
    position = ordered.groupby("userId").cumcount()
    size = ordered.groupby("userId")["movieId"].transform("size")
    held = np.maximum(1, np.round(size * holdout)).astype(int)
    held = np.where(size > 1, held, 0)  # a user with one rating keeps it for training
    is_test = position >= size - held
    return ordered[~is_test].reset_index(drop=True), ordered[is_test].reset_index(drop=True)


def top_k_excluding(
    scores: npt.NDArray[np.floating], exclude: npt.NDArray[np.bool_], k: int
) -> npt.NDArray[np.int64]:
    """Per row, the ``k`` best columns not excluded, best first."""
    masked = np.where(exclude, -np.inf, scores.astype(np.float64))
    part = np.argpartition(-masked, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(masked, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


def per_user_metrics(
    top: npt.NDArray[np.int64], relevant: npt.NDArray[np.bool_]
) -> dict[str, npt.NDArray[np.float64]]:
    """Each user's NDCG@10, P@10, Recall@20 and AP@10 of ranked lists ``top`` (users x >=20)
    against a users x items relevance mask. Users with no relevant item must already be left
    out by the caller."""
    hits = np.take_along_axis(relevant, top[:, :20], axis=1).astype(np.float64)
    n_relevant = relevant.sum(axis=1).astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, 12))
    dcg = (hits[:, :10] * discounts).sum(axis=1)
    ideal_counts = np.minimum(n_relevant, 10).astype(int)
    ideal = np.cumsum(discounts)[np.maximum(ideal_counts - 1, 0)] * (ideal_counts > 0)
    precision_at_rank = np.cumsum(hits[:, :10], axis=1) / np.arange(1, 11)
    return {
        "ndcg_at_10": np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0),
        "precision_at_10": hits[:, :10].sum(axis=1) / 10.0,
        "recall_at_20": hits[:, :20].sum(axis=1) / np.maximum(n_relevant, 1),
        "map_at_10": (precision_at_rank * hits[:, :10]).sum(axis=1)
        / np.maximum(np.minimum(n_relevant, 10), 1),
    }


def summarise(
    top: npt.NDArray[np.int64],
    relevant: npt.NDArray[np.bool_],
    item_popularity: npt.NDArray[np.integer],
) -> Metrics:
    """Means of :func:`per_user_metrics`, plus coverage and mean popularity of the top 10."""
    values = per_user_metrics(top, relevant)
    top10 = top[:, :10]
    return Metrics(
        ndcg_at_10=float(values["ndcg_at_10"].mean()),
        precision_at_10=float(values["precision_at_10"].mean()),
        recall_at_20=float(values["recall_at_20"].mean()),
        map_at_10=float(values["map_at_10"].mean()),
        coverage_at_10=float(np.unique(top10).size / relevant.shape[1]),
        mean_popularity_at_10=float(item_popularity[top10].mean()),
        users=int(relevant.shape[0]),
    )
