"""Explanations: which of the user's own rated movies drove each recommendation, and through
which arm.

Every arm reports exact per-rated-movie contributions (:meth:`Arm.contributions`): ALS's
``score_t = Σ_j c_j · y_tᵀ A⁻¹ y_j``, EASE^R's ``Σ_j w_j · B[j, t]``, the content graph's
``Σ_j w_j · sim(t, j)``. Each arm's terms for a target are divided by that arm's total
absolute contribution (its shares), weighted by how much the final score owes to the arm, and
summed. The weights are ``α`` and ``1 − α`` in the linear blend; for the ranking stage they
are how much each arm's features raised that movie's score
(:meth:`~recsys_gql.recsys.ranker.Ranker.arm_leaning`), so a movie the ranker ranked for its
popularity names no rated movie at all, and one it ranked for its EASE^R score names the
movies that drove EASE^R. The three
largest positive shares are reported, each labelled with the arm that gave it the larger part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Float64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Contribution:
    """A rated movie that pushed a recommendation up, by how much, and through which arm."""

    movie_id: int
    arm: str
    """The arm's registry name: ``als``, ``ease``, ``content`` (``popularity`` names none)."""
    share: float


@dataclass(frozen=True)
class ArmPart:
    """One arm's part in a list of scores: its per-target weight and its contributions."""

    arm: str
    weight: Float64
    """``[t]``: how much target ``t``'s final score owes to this arm (0-1)."""
    contributions: Float64
    """``[t, j]``: what rated movie ``j`` adds to the arm's score of target ``t``."""


def _shares(terms: Float64) -> Float64:
    totals = np.abs(terms).sum(axis=1, keepdims=True)
    shares: Float64 = np.divide(terms, totals, out=np.zeros_like(terms), where=totals > 0)
    return shares


SORT_WHOLE_ROWS_UP_TO = 128
"""Rows this short are sorted whole; longer ones go through :func:`_top_columns`' partition."""


def _top_columns(values: Float64, limit: int) -> npt.NDArray[np.intp]:
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
    rated_ids: npt.NDArray[np.int64], parts: Sequence[ArmPart], n_targets: int, limit: int = 3
) -> list[list[Contribution]]:
    """Up to ``limit`` contributions for each of ``n_targets`` targets; ``rated_ids`` are the
    movie ids of the contributions' columns."""
    if n_targets == 0 or rated_ids.size == 0 or not parts:
        return [[] for _ in range(n_targets)]
    weighted = np.stack([part.weight[:, None] * _shares(part.contributions) for part in parts])
    blended = weighted.sum(axis=0)
    order = _top_columns(blended, limit)
    picked = np.take_along_axis(blended, order, axis=1).tolist()
    leader = np.take_along_axis(weighted.argmax(axis=0), order, axis=1).tolist()
    movie_ids = rated_ids[order].tolist()
    names = [part.arm for part in parts]
    return [
        [
            Contribution(movie_id=movie_id, arm=names[arm], share=share)
            for movie_id, arm, share in zip(ids, arms_t, shares, strict=True)
            if share > 0
        ]
        for ids, arms_t, shares in zip(movie_ids, leader, picked, strict=True)
    ]
