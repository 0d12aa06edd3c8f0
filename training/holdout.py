"""Time-based hold-outs of a :class:`~recsys_gql.recsys.arm.TrainingSet`: each user's latest
ratings set aside, as the evaluation protocol does with the whole data set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from recsys_gql.recsys.arm import Probe, TrainingSet


@dataclass(frozen=True)
class Holdout:
    """A training set without each user's latest ratings, and those ratings (same shape)."""

    train: TrainingSet
    held_out: sp.csr_matrix

    def probe(self, threshold: float, *, max_users: int | None = None, seed: int = 0) -> Probe:
        """Users with a held-out rating >= ``threshold`` and those movies; at most
        ``max_users`` of them, a seeded sample."""
        liked = self.held_out.copy()
        liked.data = (liked.data >= threshold).astype(np.float32)
        liked.eliminate_zeros()
        users = np.flatnonzero(np.diff(liked.indptr) > 0).astype(np.int64)
        users = users[np.diff(self.train.ratings.indptr)[users] > 0]
        if max_users is not None and users.size > max_users:
            rng = np.random.default_rng(seed)
            users = np.sort(rng.choice(users, size=max_users, replace=False))
        relevant = [liked.indices[liked.indptr[u] : liked.indptr[u + 1]].astype(np.int64)
                    for u in users.tolist()]  # fmt: skip
        return Probe(users, relevant)


def _keep(matrix: sp.csr_matrix, mask: npt.NDArray[np.bool_]) -> sp.csr_matrix:
    """The entries of ``matrix`` where ``mask`` (over its stored entries) is true."""
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    out = sp.csr_matrix(
        (matrix.data[mask], (rows[mask], matrix.indices[mask])), shape=matrix.shape,
        dtype=matrix.dtype,
    )  # fmt: skip
    out.sort_indices()
    return out


def split_latest(data: TrainingSet, share: float) -> Holdout:
    """Hold out each user's latest ``share`` of ratings (at least one, by time, ties broken by
    movie; a user with one rating keeps it), like :func:`training.metrics.temporal_split`."""
    ratings, times = data.ratings, data.times
    counts = np.diff(ratings.indptr)
    rows = np.repeat(np.arange(ratings.shape[0]), counts)
    order = np.lexsort((ratings.indices, times.data, rows))
    position = np.empty(order.size, dtype=np.int64)
    position[order] = np.arange(order.size) - np.repeat(ratings.indptr[:-1], counts)
    size = counts[rows]
    held = np.where(size > 1, np.maximum(1, np.round(size * share)), 0)
    test = position >= size - held
    train = TrainingSet(_keep(ratings, ~test), _keep(times, ~test), data.catalog)
    return Holdout(train, _keep(ratings, test))
