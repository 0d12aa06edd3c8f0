"""ALS: implicit's alternating least squares, with the exact fold-in of a user's current ratings.

implicit's ALS solves, per user, ``x_u = A⁻¹ b`` with ``A = YᵀY + λI + Σ_j (c_j − 1) y_j y_jᵀ``
and ``b = Σ_j c_j y_j``, where ``c_j = alpha · weight(r_j)``. Solving that same system at request
time from the ratings the user has *now* gives the factor a full retrain would give for this
user with the item factors fixed, so a rating committed a moment ago changes the next answer.
Because ``score_i = Σ_j c_j · y_iᵀ A⁻¹ y_j``, the per-rating terms also explain each score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import Field
from threadpoolctl import threadpool_limits

from recsys_gql.recsys.arm import (
    Arm,
    ArmConfig,
    ArmScores,
    Catalog,
    Contributions,
    FloatArray,
    History,
    IndexArray,
    TrainingSet,
)

if TYPE_CHECKING:
    from recsys_gql.artifacts import ArtifactDir, ArtifactWriter

Weighting = Literal["binary", "rating", "log"]


class AlsConfig(ArmConfig):
    """implicit's ALS on a confidence-weighted user x movie matrix."""

    factors: int = Field(16, ge=2, le=1024)
    regularization: float = Field(20.0, ge=0.0)
    iterations: int = Field(20, ge=1, le=500)
    alpha: float = Field(0.5, gt=0.0, description="confidence scale of observed entries")
    weighting: Weighting = Field(
        "rating", description="value per rating before alpha: 1, the rating, or log1p(rating)"
    )
    seed: int = 42
    num_threads: int = Field(0, ge=0, description="implicit's threads; 0 = all cores")
    candidates: int = Field(100, ge=0, le=10_000, description="movies it offers the ranker")


def rating_weight(ratings: FloatArray, weighting: str) -> FloatArray:
    """Implicit-feedback strength per rating, before ``alpha`` (as in training)."""
    if weighting == "binary":
        return np.ones_like(ratings, dtype=np.float32)
    if weighting == "log":
        return np.log1p(ratings).astype(np.float32)
    if weighting != "rating":
        raise ValueError(f"unknown weighting {weighting!r}")
    return ratings.astype(np.float32)


def confidence_matrix(matrix: sp.csr_matrix, weighting: str) -> sp.csr_matrix:
    """Explicit ratings turned into implicit-feedback strengths (before ALS's ``alpha``)."""
    out = matrix.copy()
    out.data = rating_weight(out.data, weighting)
    return out


@dataclass(frozen=True)
class AlsFactors:
    """ALS output: one row per user and per movie."""

    user_factors: npt.NDArray[np.float32]
    item_factors: npt.NDArray[np.float32]


def fit_factors(ratings: sp.csr_matrix, config: AlsConfig, *, progress: bool = False) -> AlsFactors:
    """Fit implicit's ALS on ``ratings`` (users x items) weighted by ``config``.

    BLAS is held to one thread while implicit runs its own threads: nested parallelism is
    slower and implicit warns about it."""
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
        model.fit(confidence_matrix(ratings, config.weighting), show_progress=progress)
    return AlsFactors(
        user_factors=np.ascontiguousarray(model.user_factors, dtype=np.float32),
        item_factors=np.ascontiguousarray(model.item_factors, dtype=np.float32),
    )


@dataclass(frozen=True)
class FoldIn:
    """A user's factor and what is needed to explain its scores."""

    factor: FloatArray
    solve: npt.NDArray[np.float64]
    """``A⁻¹`` (factors x factors)."""
    confidence: FloatArray
    """``c_j`` for each rated row, in the order the rows were given."""


class AlsArm(Arm[AlsConfig]):
    """Fixed ALS item factors; users are folded in from their current ratings."""

    name = "als"
    description = "ALS matrix factorisation"

    def __init__(self, config: AlsConfig, item_factors: FloatArray) -> None:
        super().__init__(config)
        self.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        factors = self.item_factors.astype(np.float64)
        self._base = factors.T @ factors + config.regularization * np.eye(factors.shape[1])

    @classmethod
    def config_type(cls) -> type[AlsConfig]:
        return AlsConfig

    @classmethod
    def files(cls) -> tuple[str, ...]:
        return ("item_factors.npy",)

    @classmethod
    def fit(cls, data: TrainingSet, config: AlsConfig) -> AlsArm:
        return cls(config, fit_factors(data.ratings, config).item_factors)

    def save(self, writer: ArtifactWriter) -> dict[str, Any]:
        writer.save_array("item_factors.npy", self.item_factors)
        return {"factors": self.n_factors}

    @classmethod
    def load(
        cls, artifacts: ArtifactDir, catalog: Catalog, config: AlsConfig, details: dict[str, Any]
    ) -> AlsArm:
        return cls(config, artifacts.array("item_factors.npy"))

    @property
    def n_factors(self) -> int:
        """Number of latent factors."""
        return int(self.item_factors.shape[1])

    def fold_in(self, rows: IndexArray, ratings: FloatArray) -> FoldIn:
        """Solve for the factor of a user who rated item ``rows`` with ``ratings``."""
        config = self.config
        confidence = (config.alpha * rating_weight(ratings, config.weighting)).astype(np.float32)
        rated = self.item_factors[rows].astype(np.float64)
        system = self._base + (rated.T * (confidence - 1.0)) @ rated
        solve: npt.NDArray[np.float64] = np.linalg.inv(system).astype(np.float64)
        factor = solve @ (rated.T @ confidence.astype(np.float64))
        return FoldIn(factor=factor.astype(np.float32), solve=solve, confidence=confidence)

    def score(self, user: History) -> ArmScores:
        fold = self.fold_in(user.rows, user.ratings)
        values: FloatArray = self.item_factors @ fold.factor
        return ArmScores(values, evidence=fold)

    def contributions(self, user: History, scores: ArmScores, targets: IndexArray) -> Contributions:
        fold: FoldIn = scores.evidence
        left = self.item_factors[targets].astype(np.float64) @ fold.solve
        terms: Contributions = (left @ self.item_factors[user.rows].T) * fold.confidence
        return terms
