"""The ranking stage's features: what every arm says about a candidate movie, plus context.

Shared by training (which builds the ranker's examples) and the engine (which scores
requests), so the ranker sees in production exactly what it was trained on. The order of the
names is recorded with the ranker in the manifest and checked when the engine loads.

* each arm's features (:meth:`~recsys_gql.recsys.arm.Arm.features`) and the rank of each
  arm's own score among the candidates (``<arm>_rank``, 0 = its best);
* the user: how many ratings (log), their mean, how many years their ratings span;
* the movie at the user's time: its year and its age then;
* genre affinity: cosine of the movie's genres with the user's rating-weighted genre profile,
  and with the genres of their recent ratings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from recsys_gql.recsys.arm import AnyArm, ArmScores, FloatArray, History, IndexArray

YEAR = 365.25 * 86_400.0
CONTEXT = "context"
CONTEXT_FEATURES = (
    "user_ratings", "user_mean", "user_span", "movie_year", "movie_age",
    "genre_affinity", "genre_recent",
)  # fmt: skip
GENRE_HALF_LIFE = 5.0
"""Recency half-life (in ratings) of the recent genre profile."""


@dataclass(frozen=True)
class Scored:
    """One user scored by every arm, in registry order."""

    user: History
    arms: list[tuple[AnyArm, ArmScores]]

    def of(self, name: str) -> tuple[AnyArm, ArmScores] | None:
        """The arm called ``name`` and its scores, if the run has it."""
        return next((pair for pair in self.arms if pair[0].name == name), None)


def score_arms(arms: Sequence[AnyArm], user: History) -> Scored:
    """Every arm's scores for ``user``."""
    return Scored(user, [(arm, arm.score(user)) for arm in arms])


def feature_names(arms: Sequence[AnyArm]) -> list[str]:
    """Every feature of the ranking stage for these arms, in matrix column order."""
    names: list[str] = []
    for arm in arms:
        names += [*arm.feature_names(), f"{arm.name}_rank"]
    return names + list(CONTEXT_FEATURES)


def feature_arms(arms: Sequence[AnyArm]) -> dict[str, str]:
    """The arm each feature comes from (``context`` for the user and movie features)."""
    out = {}
    for arm in arms:
        for name in (*arm.feature_names(), f"{arm.name}_rank"):
            out[name] = arm.name
    return out | dict.fromkeys(CONTEXT_FEATURES, CONTEXT)


def candidates(scored: Scored, allowed: npt.NDArray[np.bool_]) -> IndexArray:
    """The union of each arm's best allowed movies (``candidates`` of them per arm), sorted."""
    picks = [scores.top(allowed, int(arm.config.candidates)) for arm, scores in scored.arms]
    if not picks:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(picks)).astype(np.int64)


def _ranks(values: FloatArray) -> FloatArray:
    """0 for the largest value, 1 for the next, … (ties in candidate order)."""
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(values.size, dtype=np.float32)
    ranks[order] = np.arange(values.size, dtype=np.float32)
    return ranks


def _unit(vector: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def context(
    user: History,
    genres: npt.NDArray[np.uint8],
    years: npt.NDArray[np.int16],
    targets: IndexArray,
) -> dict[str, FloatArray]:
    """The user and movie features of ``targets`` (see the module docstring)."""
    n = targets.size
    rated = genres[user.rows].astype(np.float64)
    liking = user.ratings.astype(np.float64) - float(user.ratings.mean()) + 0.5
    profile = _unit(rated.T @ np.maximum(liking, 0.0))
    recent = _unit(rated.T @ user.recency_weights(GENRE_HALF_LIFE, 0.0).astype(np.float64))
    movie = genres[targets].astype(np.float64)
    movie /= np.maximum(np.linalg.norm(movie, axis=1, keepdims=True), 1e-12)
    year = years[targets].astype(np.float32)
    known = year > 0
    user_year = np.float32(1970.0 + user.now / YEAR)
    span = float(user.times.max() - user.times.min()) / YEAR
    return {
        "user_ratings": np.full(n, np.log1p(user.size), dtype=np.float32),
        "user_mean": np.full(n, float(user.ratings.mean()), dtype=np.float32),
        "user_span": np.full(n, span, dtype=np.float32),
        "movie_year": np.where(known, year, np.nan).astype(np.float32),
        "movie_age": np.where(known, user_year - year, np.nan).astype(np.float32),
        "genre_affinity": (movie @ profile).astype(np.float32),
        "genre_recent": (movie @ recent).astype(np.float32),
    }


def matrix(
    scored: Scored,
    genres: npt.NDArray[np.uint8],
    years: npt.NDArray[np.int16],
    candidates: IndexArray,
    keep: IndexArray | None = None,
) -> npt.NDArray[np.float32]:
    """The feature matrix of ``candidates`` (of ``candidates[keep]`` only, when given: ranks
    are still among all the candidates), columns in :func:`feature_names` order."""
    targets = candidates if keep is None else candidates[keep]
    columns: list[FloatArray] = []
    for arm, scores in scored.arms:
        values = arm.features(scored.user, scores, targets)
        columns += [values[name] for name in arm.feature_names()]
        ranks = _ranks(scores.at(candidates))
        columns.append(ranks if keep is None else ranks[keep])
    extra = context(scored.user, genres, years, targets)
    columns += [extra[name] for name in CONTEXT_FEATURES]
    return np.column_stack(columns).astype(np.float32, copy=False)
