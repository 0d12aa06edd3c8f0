"""Explanations: which of the user's own rated movies drove each recommendation.

Both arms are sums over the user's rated movies, so each rated movie's share is exact:

* collab: ``score_t = Σ_j c_j · y_tᵀ A⁻¹ y_j`` (see :mod:`collaborative`);
* content: ``score_t = Σ_j w_j · sim(t, j)`` over liked movies ``j`` that have ``t`` among
  their embedding neighbours (see :class:`~recsys_gql.recsys.content.ContentGraph`).

Each arm's terms are divided by that arm's total absolute contribution, blended with the same
``α`` as the scores, and the three largest positive blended shares are reported, each labelled
with the arm that gave it the larger part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from recsys_gql.recsys.collaborative import FoldIn
    from recsys_gql.recsys.engine import Engine

Arm = Literal["collaborative", "content"]


class Evidence(Protocol):
    """What explanations need of a scored user: the fold-in and the content profile weights
    (both :class:`~recsys_gql.recsys.engine.ArmScores` and the engine's candidate path)."""

    @property
    def fold(self) -> FoldIn:
        """The user's fold-in."""
        ...

    @property
    def profile_weights(self) -> npt.NDArray[np.float32]:
        """Weight of each rated movie in the content profile."""
        ...


@dataclass(frozen=True)
class Contribution:
    """A rated movie that pushed a recommendation up, by how much, and through which arm."""

    movie_id: int
    arm: Arm
    share: float


def _shares(terms: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    totals = np.abs(terms).sum(axis=1, keepdims=True)
    shares: npt.NDArray[np.float64] = np.divide(
        terms, totals, out=np.zeros_like(terms), where=totals > 0
    )
    return shares


SORT_WHOLE_ROWS_UP_TO = 128
"""Rows this short are sorted whole; longer ones go through :func:`_top_columns`' partition."""


def _top_columns(values: npt.NDArray[np.float64], limit: int) -> npt.NDArray[np.intp]:
    """Per row, the first ``limit`` columns of a stable descending sort, i.e. exactly
    ``np.argsort(-values, axis=1, kind="stable")[:, :limit]`` (ties keep column order), but
    sorting only the few columns that reach each row's ``limit``-th largest value."""
    n_rows, n_cols = values.shape
    if limit <= 0 or n_cols <= max(limit, SORT_WHOLE_ROWS_UP_TO) or np.isnan(values).any():
        whole: npt.NDArray[np.intp] = np.argsort(-values, axis=1, kind="stable")[:, :limit]
        return whole
    kth = -np.partition(-values, limit - 1, axis=1)[:, limit - 1 : limit]
    at, cols = np.nonzero(values >= kth)  # every tie at the threshold, columns ascending
    order = np.lexsort((cols, -values[at, cols], at))  # by row, then value down, then column
    at, cols = at[order], cols[order]
    starts = np.searchsorted(at, np.arange(n_rows))  # each row has at least ``limit`` entries
    top: npt.NDArray[np.intp] = cols[starts[:, None] + np.arange(limit)]
    return top


def explain(
    engine: Engine,
    arms: Evidence,
    targets: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    alpha: float,
    limit: int = 3,
) -> list[list[Contribution]]:
    """Up to ``limit`` contributions for each target row."""
    if targets.size == 0 or rows.size == 0:
        return [[] for _ in targets]
    collab = alpha * _shares(engine.collab.contributions(arms.fold, targets, rows))
    content = (1.0 - alpha) * _shares(
        engine.graph.contributions(targets, rows, arms.profile_weights)
    )
    blended = collab + content
    order = _top_columns(blended, limit)
    picked = np.take_along_axis(blended, order, axis=1).tolist()
    by_collab = (
        np.take_along_axis(collab, order, axis=1) >= np.take_along_axis(content, order, axis=1)
    ).tolist()
    movie_ids = engine.movies.ids[rows[order]].tolist()
    return [
        [
            Contribution(
                movie_id=movie_id,
                arm="collaborative" if from_collab else "content",
                share=share,
            )
            for movie_id, from_collab, share in zip(ids, arms_t, shares, strict=True)
            if share > 0
        ]
        for ids, arms_t, shares in zip(movie_ids, by_collab, picked, strict=True)
    ]
