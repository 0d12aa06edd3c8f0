"""The arm interface: one scoring model of the engine, from training to explanation.

An arm (ALS, EASE^R, content, popularity, …) is one module under :mod:`recsys_gql.recsys.arms`
with one entry in its registry. Like implicit's recommenders it folds a user in from the
ratings they have *now* (nothing per user is kept between requests), and like LensKit's
components it carries a typed configuration and keeps training apart from scoring:

* :meth:`Arm.fit` — called by the training pipeline, once per run (and again on the pipeline's
  internal validation split, to train the ranking stage);
* :meth:`Arm.save` / :meth:`Arm.load` — the artifact files the arm owns (:meth:`Arm.files`),
  written with the run's :class:`~recsys_gql.artifacts.ArtifactWriter` and verified like any
  other file before they are read;
* :meth:`Arm.score` — the catalog scored for one user's current ratings (:class:`History`);
* :meth:`Arm.features` — what the arm tells the ranking stage about candidate movies;
* :meth:`Arm.contributions` — how much each rated movie added to a target's score, for
  explanations.

An arm may refuse to be fitted (:meth:`Arm.skip_reason`, e.g. EASE^R above its memory budget);
the run then records why in the manifest and the engine serves without it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from recsys_gql.recsys.vocab import IdVocab

if TYPE_CHECKING:
    from recsys_gql.artifacts import ArtifactDir, ArtifactWriter
    from recsys_gql.recsys.content import ContentGraph

FloatArray = npt.NDArray[np.float32]
IndexArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Contributions = npt.NDArray[np.float64]
"""``[t, j]``: what rated movie ``j`` adds to the score of target ``t``."""


class ArmConfig(BaseModel):
    """Settings of one arm (each arm subclasses it); recorded in the run's manifest."""

    model_config = ConfigDict(frozen=True, extra="forbid")


C = TypeVar("C", bound=ArmConfig)


@dataclass(frozen=True)
class History:
    """A user's current ratings, as every arm sees them.

    ``times`` are Unix seconds. A rating the model was trained on keeps its training time; a
    rating made since (through the API) counts as made at ``catalog_now``, the latest time in
    the training data, so it is the user's most recent. ``recency`` is how many of the user's
    ratings are strictly newer than each one (0 for the newest; equal times share a value).
    """

    rows: IndexArray
    ratings: FloatArray
    times: npt.NDArray[np.float64]
    recency: FloatArray
    now: float
    """The user's reference time: their latest rating (``catalog_now`` without ratings)."""

    @classmethod
    def build(
        cls,
        rows: IndexArray,
        ratings: FloatArray,
        times: npt.NDArray[np.float64],
        catalog_now: float,
    ) -> History:
        """A history from rated rows, their ratings and times (any order)."""
        times = np.asarray(times, dtype=np.float64)
        if times.size == 0:
            return cls(rows, ratings, times, np.zeros(0, dtype=np.float32), float(catalog_now))
        ordered = np.sort(times)
        newer = times.size - np.searchsorted(ordered, times, side="right")
        return cls(rows, ratings, times, newer.astype(np.float32), float(ordered[-1]))

    @property
    def size(self) -> int:
        """Number of rated movies."""
        return int(self.rows.size)

    def recency_weights(self, half_life: float, floor: float) -> FloatArray:
        """``floor + (1 − floor) · 0.5^(recency / half_life)``: 1 for the newest rating,
        fading toward ``floor`` for old ones; ``half_life <= 0`` weighs every rating 1."""
        if half_life <= 0:
            return np.ones(self.size, dtype=np.float32)
        decay = np.power(0.5, self.recency / np.float32(half_life), dtype=np.float32)
        weights: FloatArray = (floor + (1.0 - floor) * decay).astype(np.float32)
        return weights

    def latest(self, count: int) -> IndexArray:
        """Positions (into ``rows``) of the ``count`` most recent ratings, newest first."""
        order = np.argsort(self.recency, kind="stable")
        return order[:count].astype(np.int64)


@dataclass(frozen=True)
class ArmScores:
    """One arm's scores of the catalog for one user.

    Dense (``rows is None``: ``values`` has a score per movie) or sparse (``rows`` ascending
    with their ``values``; every other movie scores ``fill``). ``evidence`` is whatever the arm
    needs later to explain or describe these scores (a fold-in, profile weights, …).
    """

    values: FloatArray
    rows: IndexArray | None = None
    fill: float = 0.0
    evidence: Any = None

    def at(self, targets: IndexArray) -> FloatArray:
        """Scores of ``targets``."""
        if self.rows is None:
            return self.values[targets]
        out = np.full(targets.size, self.fill, dtype=np.float32)
        if self.rows.size == 0:
            return out
        pos = np.minimum(np.searchsorted(self.rows, targets), self.rows.size - 1)
        hit = self.rows[pos] == targets
        out[hit] = self.values[pos[hit]]
        return out

    def top(self, allowed: BoolArray, k: int) -> IndexArray:
        """Up to ``k`` allowed movies with the highest scores (any order). A sparse arm offers
        only movies it scored above its fill value."""
        if k <= 0:
            return np.zeros(0, dtype=np.int64)
        if self.rows is None:
            return top_k_allowed(self.values, allowed, k)
        keep = allowed[self.rows] & (self.values > self.fill)
        rows, values = self.rows[keep], self.values[keep]
        if rows.size <= k:
            return rows.astype(np.int64)
        return rows[np.argpartition(-values, k - 1)[:k]].astype(np.int64)


def top_k_allowed(values: FloatArray, allowed: BoolArray, k: int) -> IndexArray:
    """Positions of the ``k`` largest ``values`` among ``allowed`` (any order; ties at the
    cut broken arbitrarily)."""
    candidates = np.flatnonzero(allowed)
    if candidates.size <= k:
        return candidates.astype(np.int64)
    if candidates.size == values.size:
        return np.argpartition(-values, k - 1)[:k].astype(np.int64)
    picked = np.argpartition(-values[candidates], k - 1)[:k]
    return candidates[picked].astype(np.int64)


@dataclass(frozen=True)
class Catalog:
    """What the arms may know about the movies, in row order."""

    items: IdVocab
    genres: npt.NDArray[np.uint8]
    years: npt.NDArray[np.int16]
    graph: ContentGraph
    """Each movie's nearest movies by embedding (built by training from the index)."""

    @property
    def size(self) -> int:
        """Number of movies."""
        return len(self.items)


@dataclass(frozen=True)
class TrainingSet:
    """What an arm is fitted on: ratings (users x movies, float32) with the Unix time of each
    rating in a matrix of the same pattern, and the catalog."""

    ratings: sp.csr_matrix
    times: sp.csr_matrix
    catalog: Catalog

    @property
    def now(self) -> float:
        """The latest rating time (0 without ratings)."""
        return float(self.times.data.max()) if self.times.nnz else 0.0

    def history(self, user_row: int) -> History:
        """One user's training ratings as a :class:`History`."""
        start, end = self.ratings.indptr[user_row], self.ratings.indptr[user_row + 1]
        return History.build(
            self.ratings.indices[start:end].astype(np.int64),
            self.ratings.data[start:end].astype(np.float32),
            self.times.data[start:end],
            self.now,
        )


@dataclass(frozen=True)
class Probe:
    """Held-out movies to tune an arm on: users of a :class:`TrainingSet` (rows) and, for
    each, the later movies they liked (rows). Built by training from its validation split."""

    users: IndexArray
    relevant: list[IndexArray]

    def ndcg(self, data: TrainingSet, scores: npt.NDArray[np.float32], k: int = 10) -> float:
        """Mean NDCG@k of ``scores`` (probe users x catalog, in :attr:`users` order), each
        user's rated movies left out."""
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        ratings = data.ratings
        total = 0.0
        for at, (user, relevant) in enumerate(zip(self.users.tolist(), self.relevant, strict=True)):
            row = scores[at].astype(np.float64, copy=True)
            row[ratings.indices[ratings.indptr[user] : ratings.indptr[user + 1]]] = -np.inf
            top = np.argpartition(-row, k)[:k] if row.size > k else np.arange(row.size)
            top = top[np.argsort(-row[top], kind="stable")]
            gains = np.isin(top, relevant) * discounts[: top.size]
            ideal = discounts[: min(k, relevant.size)].sum()
            total += float(gains.sum() / ideal) if ideal > 0 else 0.0
        return total / max(1, self.users.size)


class Arm(ABC, Generic[C]):
    """One scoring model (see the module docstring). Instances are immutable once fitted or
    loaded, and safe to share between threads."""

    name: ClassVar[str]
    """Registry key, manifest section, explanation label and feature prefix."""
    description: ClassVar[str]
    """What it is, in a few words (the API's description of the arm)."""

    def __init__(self, config: C) -> None:
        self.config = config

    @classmethod
    @abstractmethod
    def config_type(cls) -> type[C]:
        """The arm's configuration model."""

    @classmethod
    @abstractmethod
    def files(cls) -> tuple[str, ...]:
        """The artifact files the arm owns."""

    @classmethod
    def skip_reason(cls, data: TrainingSet, config: C) -> str | None:
        """Why the arm cannot be fitted on ``data`` (``None``: it can)."""
        return None

    @classmethod
    @abstractmethod
    def fit(cls, data: TrainingSet, config: C) -> Arm[C]:
        """Fit on ``data`` (training only)."""

    @abstractmethod
    def save(self, writer: ArtifactWriter) -> dict[str, Any]:
        """Write :meth:`files` and return facts for the manifest (sizes, tuned values…)."""

    @classmethod
    @abstractmethod
    def load(
        cls, artifacts: ArtifactDir, catalog: Catalog, config: C, details: dict[str, Any]
    ) -> Arm[C]:
        """Load from a verified run (``details``: what :meth:`save` returned)."""

    @abstractmethod
    def score(self, user: History) -> ArmScores:
        """Score the catalog for ``user`` (who has at least one rating)."""

    @classmethod
    def tune(cls, data: TrainingSet, probe: Probe, config: C) -> tuple[Arm[C], Any]:
        """Fit on ``data`` with the settings that score ``probe`` best, and what was tried;
        by default nothing is tuned."""
        return cls.fit(data, config), None

    def features(
        self, user: History, scores: ArmScores, candidates: IndexArray
    ) -> dict[str, FloatArray]:
        """Ranking-stage features of ``candidates``, named ``<arm>`` or ``<arm>_<what>``; by
        default the arm's score."""
        return {self.name: scores.at(candidates)}

    def feature_names(self) -> tuple[str, ...]:
        """The names :meth:`features` returns, in its order."""
        return (self.name,)

    def contributions(self, user: History, scores: ArmScores, targets: IndexArray) -> Contributions:
        """``[t, j]`` = what rated movie ``user.rows[j]`` adds to ``targets[t]``'s score; an arm
        whose scores do not come from the user's ratings returns zeros."""
        return np.zeros((targets.size, user.size), dtype=np.float64)


AnyArm = Arm[Any]
