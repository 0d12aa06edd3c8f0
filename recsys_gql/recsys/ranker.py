"""The ranking stage: a LightGBM LambdaRank model over every arm's features.

Trained by ``training.ranker`` on the training data's own time-based validation split (each
user's latest ratings held out), so it learns how to weigh the arms for a user's *next*
movies. Saved in LightGBM's text format (no pickle) with its feature names, listed with its
sha256 in the manifest and verified like every artifact; on load the names must equal what
the loaded arms produce (:func:`~recsys_gql.recsys.features.feature_names`).

For explanations, :meth:`Ranker.arm_leaning` measures how much each arm's features raised a
movie's score (the drop when they are set to the candidates' median): which arms the ranker
leaned on for that movie.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from recsys_gql.errors import ArtifactError
from recsys_gql.recsys import features
from recsys_gql.recsys.arm import FloatArray, IndexArray
from recsys_gql.recsys.blend import normalise, top_n
from recsys_gql.recsys.features import CONTEXT, Scored
from recsys_gql.recsys.trees import TreeBackend, Trees, lightgbm_trees, load_trees

GENRE_FEATURE = "genre_affinity"

MODEL_FILE = "ranker.txt"


@dataclass(frozen=True)
class GenreGuard:
    """How much genre affinity a short history's ranking keeps: ``weight · k / (n + k)`` for a
    user with ``n`` ratings (see :func:`rank`)."""

    weight: float = 0.0
    ramp: float = 5.0

    def at(self, n_ratings: int) -> float:
        """The guard's share for a user with ``n_ratings``."""
        if self.weight <= 0:
            return 0.0
        return self.weight * self.ramp / (n_ratings + self.ramp)


class Ranker:
    """A loaded LightGBM booster, how its trees are evaluated (:mod:`~recsys_gql.recsys.trees`),
    the arm of each of its features and its genre guard."""

    def __init__(
        self,
        booster: Any,
        features: list[str],
        feature_arms: dict[str, str],
        guard: GenreGuard | None = None,
        trees: Trees | None = None,
    ) -> None:
        self.booster = booster
        self.trees = trees or lightgbm_trees(booster)
        self.features = features
        self.feature_arms = feature_arms
        self.guard = guard or GenreGuard()
        arms = sorted(set(feature_arms.values()))
        self.arms = arms
        self._arm_columns = np.array([arms.index(feature_arms[f]) for f in features])
        self._genre_column = features.index(GENRE_FEATURE) if GENRE_FEATURE in features else None

    @classmethod
    def from_string(
        cls,
        text: str,
        features: list[str],
        feature_arms: dict[str, str],
        guard: GenreGuard | None = None,
        backend: TreeBackend = "lightgbm",
    ) -> Ranker:
        """A ranker from LightGBM's text model (checked against ``features``), its trees
        evaluated by ``backend``."""
        import lightgbm

        booster = lightgbm.Booster(model_str=text)
        if list(booster.feature_name()) != list(features):
            raise ArtifactError(
                f"the ranker's features {booster.feature_name()} are not the manifest's "
                f"{features}: retrain with `recsys-gql train`"
            )
        return cls(booster, features, feature_arms, guard, load_trees(booster, text, backend))

    @classmethod
    def from_record(cls, text: str, record: Any, backend: TreeBackend = "lightgbm") -> Ranker:
        """A ranker from its model text and its manifest section (a :class:`RankerRecord`)."""
        guard = GenreGuard(**record.details.get("genre_guard", {}))
        return cls.from_string(text, record.features, record.feature_arms, guard, backend)

    def leaning(
        self,
        matrix: npt.NDArray[np.float32],
        reference: npt.NDArray[np.float32],
        guard: float,
    ) -> npt.NDArray[np.float64]:
        """:meth:`arm_leaning` with the genre guard's share counted as ``context``."""
        shares = self.arm_leaning(matrix, reference)
        if guard > 0 and CONTEXT in self.arms:
            shares *= 1.0 - guard
            shares[:, self.arms.index(CONTEXT)] += guard
        return shares

    def genre_affinity(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The genre-affinity column of a feature matrix (zeros without one)."""
        if self._genre_column is None:
            return np.zeros(matrix.shape[0], dtype=np.float32)
        column: npt.NDArray[np.float32] = matrix[:, self._genre_column]
        return column

    def predict(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """A score per row (higher ranks first)."""
        return self.trees.predict(matrix)

    def arm_leaning(
        self, matrix: npt.NDArray[np.float32], reference: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float64]:
        """``[row, arm]`` (:attr:`arms` order): how much each arm's evidence raised each row's
        score. An arm's features are set to ``reference`` (what the arm says of a typical
        candidate: their median) and the rows scored again; the drops, positive parts only,
        are the arm's shares of the row's total. One batched prediction of ``(arms + 1) x
        rows``: the same question as grouping LightGBM's per-feature ``pred_contrib`` by arm,
        at a small fraction of its cost (docs/ranking.md)."""
        n = matrix.shape[0]
        blocks = [matrix]
        for j in range(len(self.arms)):
            masked = matrix.copy()
            columns = self._arm_columns == j
            masked[:, columns] = reference[columns]
            blocks.append(masked)
        scores = self.trees.predict(np.vstack(blocks))
        scores = scores.reshape(len(self.arms) + 1, n)
        drops = np.maximum(scores[0] - scores[1:], 0.0).T
        totals = drops.sum(axis=1, keepdims=True)
        shares: npt.NDArray[np.float64] = np.divide(
            drops, totals, out=np.zeros_like(drops), where=totals > 0
        )
        return shares


@dataclass(frozen=True)
class Ranked:
    """The top movies of the ranking stage for one user, best first."""

    rows: IndexArray
    score: FloatArray
    """The ranker's score scaled to 0-1 over the candidates."""
    arm_scores: dict[str, FloatArray]
    """Each arm's score of ``rows`` scaled to 0-1 over the candidates."""
    features: npt.NDArray[np.float32]
    """The feature rows of ``rows`` (for :meth:`Ranker.arm_leaning`)."""
    table: npt.NDArray[np.float32]
    """The feature rows of every candidate."""
    candidates: int
    """How many movies the arms offered."""
    guard: float = 0.0
    """The genre guard's share of the order (0 for long histories)."""

    @functools.cached_property
    def reference(self) -> npt.NDArray[np.float32]:
        """Each feature's median over the candidates (for :meth:`Ranker.arm_leaning`): only
        explanations need it, so it is computed when first asked for."""
        if self.table.shape[0] == 0:
            return np.zeros(self.table.shape[1], np.float32)
        return np.median(self.table, axis=0).astype(np.float32)


def rank(
    ranker: Ranker,
    scored: Scored,
    genres: npt.NDArray[np.uint8],
    years: npt.NDArray[np.int16],
    allowed: npt.NDArray[np.bool_],
    n: int,
) -> Ranked:
    """Candidates from every arm, the ranker's order over them, the top ``n``.

    The genre guard: for a short history the order is ``(1 − g) · ranker + g · genre
    affinity`` (both scaled 0-1 over the candidates), ``g`` fading with the number of
    ratings. Offline accuracy for the first few ratings rewards what everyone watches; the
    guard keeps a new user's list in the genres they rated, at a measured cost
    (docs/ranking.md), and is gone after a few dozen ratings.
    """
    rows = features.candidates(scored, allowed)
    table = features.matrix(scored, genres, years, rows)
    predicted = ranker.predict(table) if rows.size else np.zeros(0)
    score = normalise(predicted.astype(np.float32))
    guard = ranker.guard.at(scored.user.size)
    if guard > 0 and rows.size:
        taste = normalise(ranker.genre_affinity(table))
        score = ((1.0 - guard) * score + guard * taste).astype(np.float32)
    best = top_n(score, n)
    scaled = {arm.name: normalise(scores.at(rows))[best] for arm, scores in scored.arms}
    return Ranked(
        rows=rows[best],
        score=normalise(score)[best],
        arm_scores=scaled,
        features=table[best],
        table=table,
        candidates=int(rows.size),
        guard=guard,
    )
