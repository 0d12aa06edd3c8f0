"""Collaborative arm: ALS item factors and the exact fold-in of a user's current ratings.

implicit's ALS solves, per user, ``x_u = A⁻¹ b`` with ``A = YᵀY + λI + Σ_j (c_j − 1) y_j y_jᵀ``
and ``b = Σ_j c_j y_j``, where ``c_j = alpha · weight(r_j)``. Solving that same system at request
time from the ratings the user has *now* gives the factor a full retrain would give for this
user with the item factors fixed, so a rating committed a moment ago changes the next answer.
Because ``score_i = Σ_j c_j · y_iᵀ A⁻¹ y_j``, the per-rating terms also explain each score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IndexArray = npt.NDArray[np.int64]


def rating_weight(ratings: FloatArray, weighting: str) -> FloatArray:
    """Implicit-feedback strength per rating, before ``alpha`` (as in training)."""
    if weighting == "binary":
        return np.ones_like(ratings, dtype=np.float32)
    if weighting == "log":
        return np.log1p(ratings).astype(np.float32)
    return ratings.astype(np.float32)


@dataclass(frozen=True)
class FoldIn:
    """A user's factor and what is needed to explain its scores."""

    factor: FloatArray
    solve: npt.NDArray[np.float64]
    """``A⁻¹`` (factors x factors)."""
    confidence: FloatArray
    """``c_j`` for each rated row, in the order the rows were given."""


class CollaborativeModel:
    """Fixed ALS item factors plus the hyper-parameters needed to fold users in."""

    def __init__(
        self,
        item_factors: FloatArray,
        *,
        regularization: float,
        alpha: float,
        weighting: str,
    ) -> None:
        self.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        self.regularization = regularization
        self.alpha = alpha
        self.weighting = weighting
        factors = self.item_factors.astype(np.float64)
        self._base = factors.T @ factors + regularization * np.eye(factors.shape[1])

    @property
    def n_factors(self) -> int:
        """Number of latent factors."""
        return int(self.item_factors.shape[1])

    def fold_in(self, rows: IndexArray, ratings: FloatArray) -> FoldIn:
        """Solve for the factor of a user who rated item ``rows`` with ``ratings``."""
        confidence = (self.alpha * rating_weight(ratings, self.weighting)).astype(np.float32)
        rated = self.item_factors[rows].astype(np.float64)
        system = self._base + (rated.T * (confidence - 1.0)) @ rated
        solve: npt.NDArray[np.float64] = np.linalg.inv(system).astype(np.float64)
        factor = solve @ (rated.T @ confidence.astype(np.float64))
        return FoldIn(factor=factor.astype(np.float32), solve=solve, confidence=confidence)

    def scores(self, fold: FoldIn) -> FloatArray:
        """Predicted preference of the user for every item."""
        result: FloatArray = self.item_factors @ fold.factor
        return result

    def contributions(
        self, fold: FoldIn, targets: IndexArray, rated: IndexArray
    ) -> npt.NDArray[np.float64]:
        """``[t, j]`` = how much rated item ``rated[j]`` adds to the score of ``targets[t]``."""
        left = self.item_factors[targets].astype(np.float64) @ fold.solve
        terms: npt.NDArray[np.float64] = (left @ self.item_factors[rated].T) * fold.confidence
        return terms
