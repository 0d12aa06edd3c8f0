"""The ranking stage: a LightGBM LambdaRank model over every arm's features.

Trained by ``training.ranker`` on the training data's own time-based validation split (each
user's latest ratings held out), so it learns how to weigh the arms for a user's *next*
movies. Saved in LightGBM's text format (no pickle) with its feature names, listed with its
sha256 in the manifest and verified like every artifact; on load the names must equal what
the loaded arms produce (:func:`~recsys_gql.recsys.features.feature_names`).

For explanations, LightGBM's ``pred_contrib`` splits each prediction into per-feature terms
(TreeSHAP); summed by the arm each feature comes from, they say which arms the ranker leaned
on for that movie.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from recsys_gql.errors import ArtifactError
from recsys_gql.recsys import features
from recsys_gql.recsys.arm import FloatArray, IndexArray
from recsys_gql.recsys.blend import normalise, top_n
from recsys_gql.recsys.features import Scored

MODEL_FILE = "ranker.txt"


class Ranker:
    """A loaded LightGBM booster and the arm of each of its features."""

    def __init__(self, booster: Any, features: list[str], feature_arms: dict[str, str]) -> None:
        self.booster = booster
        self.features = features
        self.feature_arms = feature_arms
        arms = sorted(set(feature_arms.values()))
        self.arms = arms
        self._arm_columns = np.array([arms.index(feature_arms[f]) for f in features])

    @classmethod
    def from_string(cls, text: str, features: list[str], feature_arms: dict[str, str]) -> Ranker:
        """A ranker from LightGBM's text model (checked against ``features``)."""
        import lightgbm

        booster = lightgbm.Booster(model_str=text)
        if list(booster.feature_name()) != list(features):
            raise ArtifactError(
                f"the ranker's features {booster.feature_name()} are not the manifest's "
                f"{features}: retrain with `recsys-gql train`"
            )
        return cls(booster, features, feature_arms)

    @classmethod
    def load(cls, path: Path, features: list[str], feature_arms: dict[str, str]) -> Ranker:
        """Read a verified model file."""
        return cls.from_string(path.read_text(encoding="utf-8"), features, feature_arms)

    def predict(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """A score per row (higher ranks first)."""
        scores: npt.NDArray[np.float64] = self.booster.predict(matrix, num_threads=1)
        return scores

    def arm_leaning(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """``[row, arm]``: each row's positive per-feature contributions summed by arm
        (:attr:`arms` order), as shares of the row's total; the constant term is left out."""
        contrib = np.asarray(self.booster.predict(matrix, pred_contrib=True, num_threads=1))
        per_feature = np.maximum(contrib[:, :-1], 0.0)
        by_arm = np.zeros((matrix.shape[0], len(self.arms)), dtype=np.float64)
        np.add.at(by_arm.T, self._arm_columns, per_feature.T)
        totals = by_arm.sum(axis=1, keepdims=True)
        shares: npt.NDArray[np.float64] = np.divide(
            by_arm, totals, out=np.zeros_like(by_arm), where=totals > 0
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
    candidates: int
    """How many movies the arms offered."""


def rank(
    ranker: Ranker,
    scored: Scored,
    genres: npt.NDArray[np.uint8],
    years: npt.NDArray[np.int16],
    allowed: npt.NDArray[np.bool_],
    n: int,
) -> Ranked:
    """Candidates from every arm, the ranker's order over them, the top ``n``."""
    rows = features.candidates(scored, allowed)
    table = features.matrix(scored, genres, years, rows)
    predicted = ranker.predict(table) if rows.size else np.zeros(0)
    best = top_n(predicted, n)
    scaled = {arm.name: normalise(scores.at(rows))[best] for arm, scores in scored.arms}
    return Ranked(
        rows=rows[best],
        score=normalise(predicted.astype(np.float32))[best],
        arm_scores=scaled,
        features=table[best],
        candidates=int(rows.size),
    )
