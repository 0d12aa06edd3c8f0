"""EASE^R (Steck, 2019): a closed-form item-item model, served by a vector-matrix product.

Training solves ``B = I − P · diag(1/diag(P))`` with ``P = (XᵀX + λI)⁻¹`` over the binary
user x movie matrix ``X`` (``diag(B) = 0``). A user's scores are ``x · B``, where ``x`` weighs
each rated movie: the product is over the user's *current* ratings, so a new rating counts at
once, and each rated movie's row of ``B`` is its exact contribution (explanations).

Two choices beyond the paper:

* **Recency.** The served score weighs each rated movie by ``floor + (1 − floor) · 0.5^(r/h)``
  where ``r`` is how many of the user's ratings are newer (:meth:`History.recency_weights`):
  held-out ratings are a user's *next* ones, and their latest ratings say most about them. The
  unweighted product is kept as a second feature for the ranking stage. ``λ``, ``h`` and
  ``floor`` are chosen on the training pipeline's validation split (:meth:`EaseArm.tune`).
* **A memory budget.** ``B`` is dense: training holds one ``n x n`` float32 matrix (the Gram
  matrix, factorised, inverted and scaled in place) and serving holds ``B``. Only movies with
  at least ``min_ratings`` ratings get a row and column (a movie rated a few times gets no
  learnable item-item weights), and when training would exceed ``max_memory_mb`` the arm is
  skipped: the run's manifest and the API's ``health`` say why, and the engine serves
  without it.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import Field
from scipy.linalg import lapack

from recsys_gql.recsys.arm import (
    Arm,
    ArmConfig,
    ArmScores,
    Catalog,
    Contributions,
    FloatArray,
    History,
    IndexArray,
    Probe,
    TrainingSet,
)

if TYPE_CHECKING:
    from recsys_gql.artifacts import ArtifactDir, ArtifactWriter

TRAINING_COPIES = 1.25
"""Peak of :func:`fit_weights` in ``n x n`` float32 matrices: the one matrix that becomes
``B`` in place, plus a block of users and a band of the mirror (``tests/recsys/test_arms.py``
measures it)."""


class EaseConfig(ArmConfig):
    """EASE^R; ``regularization``, ``half_life`` and ``floor`` are tuned over their grids on
    the training pipeline's validation split (a single value skips the search)."""

    regularization: list[float] = Field(
        default_factory=lambda: [100.0, 300.0, 1000.0], min_length=1, description="λ grid"
    )
    half_life: list[float] = Field(
        default_factory=lambda: [0.0, 2.0, 8.0],
        min_length=1,
        description="recency half-life in ratings (0: every rating weighs the same)",
    )
    floor: list[float] = Field(
        default_factory=lambda: [0.1], min_length=1, description="weight of old ratings"
    )
    min_ratings: int = Field(5, ge=1, description="movies with fewer ratings get no weights")
    max_memory_mb: float = Field(
        2048.0, gt=0, description="skip the arm when training's dense matrices exceed this"
    )
    candidates: int = Field(100, ge=0, le=10_000, description="movies it offers the ranker")

    def chosen(self, regularization: float, half_life: float, floor: float) -> EaseConfig:
        """This config with one value per grid (what a fitted arm records)."""
        return self.model_copy(
            update={"regularization": [regularization], "half_life": [half_life], "floor": [floor]}
        )


def training_bytes(n_items: int) -> int:
    """Peak bytes of :func:`fit_weights`' dense matrices for ``n_items`` movies."""
    return int(TRAINING_COPIES * 4 * n_items * n_items)


def eligible(ratings: sp.csr_matrix, min_ratings: int) -> IndexArray:
    """Catalog rows of movies with at least ``min_ratings`` ratings (EASE's vocabulary)."""
    counts = np.bincount(ratings.indices, minlength=ratings.shape[1])
    return np.flatnonzero(counts >= min_ratings).astype(np.int64)


GRAM_CHUNK_CELLS = 1 << 24
"""Users per dense block of :func:`gram` are chosen so a block holds about this many cells."""


def gram(binary: sp.csr_matrix) -> npt.NDArray[np.float32]:
    """``XᵀX`` as a dense float32 matrix, accumulated over dense blocks of users by BLAS (a
    sparse product would hold the result's nonzeros and their indices: several times more)."""
    n_users, n = binary.shape
    out = np.zeros((n, n), dtype=np.float32)
    step = max(1, GRAM_CHUNK_CELLS // max(n, 1))
    for start in range(0, n_users, step):
        block = binary[start : start + step].toarray()
        out += block.T @ block
    return out


def _mirror_lower(matrix: npt.NDArray[np.float32], block: int = 512) -> None:
    """Copy the lower triangle onto the upper one, in place, a band of rows at a time."""
    n = matrix.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        matrix[start:stop, stop:] = matrix[stop:, start:stop].T
        square = matrix[start:stop, start:stop]
        upper = np.triu_indices(stop - start, 1)
        square[upper] = square.T[upper]


def fit_weights(ratings: sp.csr_matrix, columns: IndexArray, lam: float) -> FloatArray:
    """``B`` over the movies ``columns`` of ``ratings`` (binary): one ``n x n`` float32 matrix
    factorised, inverted and scaled in place."""
    binary = ratings[:, columns].tocsr()
    binary.data = np.ones_like(binary.data, dtype=np.float32)
    weights = gram(binary)
    weights[np.diag_indices_from(weights)] += np.float32(lam)
    # Symmetric, so the C-ordered array's transpose is the same matrix in Fortran order, and
    # LAPACK works on it in place; its upper triangle is this array's lower one.
    factor, info = lapack.spotrf(weights.T, lower=0, overwrite_a=1, clean=0)
    if info != 0:
        raise ValueError(f"EASE^R Gram matrix is not positive definite (info {info})")
    del weights
    inverse, info = lapack.spotri(factor, lower=0, overwrite_c=1)
    if info != 0:
        raise ValueError(f"EASE^R inverse failed (info {info})")
    del factor
    full: FloatArray = inverse.T  # C-ordered; its lower triangle holds the inverse
    del inverse
    _mirror_lower(full)
    diagonal = np.diag(full).copy()
    full /= -diagonal[None, :]
    full[np.diag_indices_from(full)] = 0.0
    return full


class EaseArm(Arm[EaseConfig]):
    """EASE^R weights over the movies with enough ratings; users scored by ``x · B``."""

    name = "ease"
    description = "EASE^R item-item model, recent ratings first"

    def __init__(
        self, config: EaseConfig, columns: IndexArray, weights: FloatArray, n_items: int
    ) -> None:
        super().__init__(config)
        self.columns = columns.astype(np.int64)
        self.weights = weights
        self.n_items = n_items
        self._position = np.full(n_items, -1, dtype=np.int64)
        self._position[self.columns] = np.arange(self.columns.size)
        self.regularization = config.regularization[0]
        self.half_life = config.half_life[0]
        self.floor = config.floor[0]

    @classmethod
    def config_type(cls) -> type[EaseConfig]:
        return EaseConfig

    @classmethod
    def files(cls) -> tuple[str, ...]:
        return ("ease_columns.npy", "ease_weights.npy")

    @classmethod
    def skip_reason(cls, data: TrainingSet, config: EaseConfig) -> str | None:
        n = eligible(data.ratings, config.min_ratings).size
        if n < 2:
            return f"only {n} movies have at least {config.min_ratings} ratings"
        need = training_bytes(n) / 2**20
        if need > config.max_memory_mb:
            return (
                f"{n:,} movies with at least {config.min_ratings} ratings need "
                f"{need:,.0f} MB of dense matrices to train, over the "
                f"{config.max_memory_mb:,.0f} MB budget (ease.max_memory_mb)"
            )
        return None

    @classmethod
    def fit(cls, data: TrainingSet, config: EaseConfig) -> EaseArm:
        columns = eligible(data.ratings, config.min_ratings)
        weights = fit_weights(data.ratings, columns, config.regularization[0])
        chosen = config.chosen(config.regularization[0], config.half_life[0], config.floor[0])
        return cls(chosen, columns, weights, data.catalog.size)

    @classmethod
    def tune(cls, data: TrainingSet, probe: Probe, config: EaseConfig) -> tuple[EaseArm, Any]:
        """Fit at each λ and score ``probe`` at each recency setting (all users in one sparse
        product); keep the best NDCG@10."""
        best: tuple[float, EaseArm] | None = None
        trials = []
        users = [data.history(int(user)) for user in probe.users]
        settings = [(0.0, config.floor[0])] * any(h <= 0 for h in config.half_life) + [
            (half, floor)
            for half, floor in itertools.product(config.half_life, config.floor)
            if half > 0
        ]
        for lam in config.regularization:
            fitted = cls.fit(data, config.chosen(lam, 0.0, config.floor[0]))
            for half, floor in settings:
                arm = cls(config.chosen(lam, half, floor), fitted.columns, fitted.weights,
                          fitted.n_items)  # fmt: skip
                ndcg = probe.ndcg(data, arm.score_many(users))
                trials.append({"regularization": lam, "half_life": half, "floor": floor,
                               "ndcg_at_10": round(ndcg, 5)})  # fmt: skip
                if best is None or ndcg > best[0] + 1e-12:
                    best = (ndcg, arm)
        assert best is not None
        return best[1], trials

    def score_many(self, users: list[History]) -> FloatArray:
        """:meth:`score` of many users at once (users x catalog), by one sparse product."""
        rows, cols, values = [], [], []
        for k, user in enumerate(users):
            pos = self._position[user.rows]
            known = pos >= 0
            rows.append(np.full(int(known.sum()), k))
            cols.append(pos[known])
            values.append(user.recency_weights(self.half_life, self.floor)[known])
        inputs = sp.csr_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(users), self.columns.size), dtype=np.float32,
        )  # fmt: skip
        out = np.zeros((len(users), self.n_items), dtype=np.float32)
        out[:, self.columns] = inputs @ self.weights
        return out

    def save(self, writer: ArtifactWriter) -> dict[str, Any]:
        writer.save_array("ease_columns.npy", self.columns)
        writer.save_array("ease_weights.npy", self.weights)
        return {
            "movies": int(self.columns.size),
            "weights_mb": round(self.weights.nbytes / 2**20, 1),
            "training_mb": round(training_bytes(self.columns.size) / 2**20, 1),
        }

    @classmethod
    def load(
        cls, artifacts: ArtifactDir, catalog: Catalog, config: EaseConfig, details: dict[str, Any]
    ) -> EaseArm:
        columns = artifacts.array("ease_columns.npy")
        return cls(config, columns, artifacts.array("ease_weights.npy"), catalog.size)

    def _inputs(self, user: History) -> tuple[IndexArray, npt.NDArray[np.float32]]:
        """Positions in ``B`` of the rated movies it knows, and their recency-weighted and
        unweighted inputs (2 x rated)."""
        pos = self._position[user.rows]
        known = pos >= 0
        recent = user.recency_weights(self.half_life, self.floor)
        inputs = np.stack([recent, np.ones_like(recent)])
        return pos[known], np.ascontiguousarray(inputs[:, known])

    def score(self, user: History) -> ArmScores:
        """``x · B`` for the recency-weighted and the plain inputs. A user who rated a third
        of ``B``'s movies or more gets the product with a dense ``x`` over all of ``B``:
        cheaper than gathering that many rows of it (the same sums, in another order)."""
        pos, inputs = self._inputs(user)
        both = np.zeros((2, self.n_items), dtype=np.float32)
        if 3 * pos.size >= self.columns.size:
            dense = np.zeros((2, self.columns.size), dtype=np.float32)
            dense[:, pos] = inputs
            rows = self.weights
        elif pos.size:
            dense, rows = inputs, self.weights[pos]
        else:
            return ArmScores(both[0], evidence=both[1])
        # One vector-matrix product per input: BLAS's 2-row matrix product took longer than
        # the two together (BENCHMARKS.md, "Engine latency").
        both[0, self.columns] = dense[0] @ rows
        both[1, self.columns] = dense[1] @ rows
        return ArmScores(both[0], evidence=both[1])

    def features(
        self, user: History, scores: ArmScores, candidates: IndexArray
    ) -> dict[str, FloatArray]:
        unweighted: FloatArray = scores.evidence
        return {"ease": scores.at(candidates), "ease_all": unweighted[candidates]}

    def feature_names(self) -> tuple[str, ...]:
        return ("ease", "ease_all")

    def contributions(self, user: History, scores: ArmScores, targets: IndexArray) -> Contributions:
        out = np.zeros((targets.size, user.size), dtype=np.float64)
        rated = self._position[user.rows]
        target_pos = self._position[targets]
        known, reachable = np.flatnonzero(rated >= 0), np.flatnonzero(target_pos >= 0)
        if known.size == 0 or reachable.size == 0:
            return out
        weights = user.recency_weights(self.half_life, self.floor)[known].astype(np.float64)
        block = self.weights[np.ix_(rated[known], target_pos[reachable])].astype(np.float64)
        out[np.ix_(reachable, known)] = (block * weights[:, None]).T
        return out
