"""Explanations: which of the user's own rated movies drove each recommendation.

Both arms are sums over the user's rated movies, so each rated movie's share is exact:

* collab: ``score_t = Σ_j c_j · y_tᵀ A⁻¹ y_j`` (see :mod:`collaborative`);
* content: ``score_t = Σ_j w_j · e_t · e_j`` over the normalised profile weights.

Each arm's terms are divided by that arm's total absolute contribution, blended with the same
``α`` as the scores, and the three largest positive blended shares are reported, each labelled
with the arm that gave it the larger part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from recsys_gql.recsys.engine import ArmScores, Engine

Arm = Literal["collaborative", "content"]


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


def explain(
    engine: Engine,
    arms: ArmScores,
    targets: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    alpha: float,
    limit: int = 3,
) -> list[list[Contribution]]:
    """Up to ``limit`` contributions for each target row."""
    if targets.size == 0 or rows.size == 0:
        return [[] for _ in targets]
    collab = alpha * _shares(engine.collab.contributions(arms.fold, targets, rows))
    similarity = engine.embeddings[targets].astype(np.float64) @ engine.embeddings[rows].T
    content = (1.0 - alpha) * _shares(similarity * arms.profile_weights)
    blended = collab + content
    out: list[list[Contribution]] = []
    for t in range(targets.size):
        order = np.argsort(-blended[t], kind="stable")[:limit]
        out.append(
            [
                Contribution(
                    movie_id=engine.movies.id_of(int(rows[j])),
                    arm="collaborative" if collab[t, j] >= content[t, j] else "content",
                    share=float(blended[t, j]),
                )
                for j in order
                if blended[t, j] > 0
            ]
        )
    return out
