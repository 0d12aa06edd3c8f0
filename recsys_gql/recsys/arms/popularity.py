"""Popularity: how many people rated a movie, overall and in the months before the user's time.

Besides all-time counts and a Bayesian-average rating (the catalog's "popular" list), the arm
keeps each movie's cumulative rating count at fixed time steps, so the count in any window
before a user's reference time (:attr:`History.now`) is two lookups. A user active in 2003 is
offered what was being watched in 2003; a user rating today, what is watched now. The served
window is chosen on the training pipeline's validation split (:meth:`PopularityArm.tune`).

The arm also knows when each movie was first rated, so the ranking stage can tell a movie
that had just appeared at the user's time from one that did not exist yet.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import Field

from recsys_gql.recsys.arm import (
    Arm,
    ArmConfig,
    ArmScores,
    Catalog,
    FloatArray,
    History,
    IndexArray,
    Probe,
    TrainingSet,
)

if TYPE_CHECKING:
    from recsys_gql.artifacts import ArtifactDir, ArtifactWriter

DAY = 86_400.0
YEAR = 365.25 * DAY
SCORE_CACHE_MB = 16.0
"""Memory for served score vectors kept per pair of time steps (see :meth:`PopularityArm.score`)."""


class PopularityConfig(ArmConfig):
    """Counts, a Bayesian average, and counts in windows before the user's time."""

    prior_count: float = Field(
        10.0, gt=0.0, description="pseudo-ratings at the global mean in the Bayesian average"
    )
    window_days: list[float] = Field(
        default_factory=lambda: [90.0, 365.0, 1095.0, 0.0],
        min_length=1,
        description="window of the served score, tuned over this grid (0: all time)",
    )
    feature_windows_days: list[float] = Field(
        default_factory=lambda: [90.0, 365.0], description="windows given to the ranker"
    )
    step_days: float = Field(30.0, gt=0.0, description="time step of the cumulative counts")
    max_steps_mb: float = Field(
        256.0, gt=0.0, description="coarser steps when the cumulative counts would exceed this"
    )
    candidates: int = Field(50, ge=0, le=10_000, description="movies it offers the ranker")


def bayesian_average(
    ratings: sp.csr_matrix, prior_count: float
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Per movie: rating count, mean, and ``(sum + m · global_mean) / (count + m)``.

    A movie with two 5-star ratings does not outrank one with hundreds of 4.5s; unrated movies
    sit at the global mean."""
    count = np.bincount(ratings.indices, minlength=ratings.shape[1]).astype(np.int32)
    total = np.bincount(ratings.indices, weights=ratings.data, minlength=ratings.shape[1])
    global_mean = float(ratings.data.mean()) if ratings.nnz else 0.0
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    score = (total + prior_count * global_mean) / (count + prior_count)
    return count, mean.astype(np.float32), score.astype(np.float32)


def cumulative_counts(
    items: IndexArray, times: npt.NDArray[np.float64], n_items: int, config: PopularityConfig
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int32]]:
    """Step edges ``e_0 < … < e_S`` and ``counts[s, i]`` = ratings of movie ``i`` before
    ``e_s``. Steps are ``step_days`` long, widened so the table stays under ``max_steps_mb``."""
    if times.size == 0:
        return np.zeros(1, dtype=np.float64), np.zeros((1, n_items), dtype=np.int32)
    start, end = float(times.min()), float(times.max())
    max_steps = max(1, int(config.max_steps_mb * 2**20 // (4 * max(n_items, 1))) - 1)
    step = max(config.step_days * DAY, (end - start) / max_steps, 1.0)
    n_steps = max(1, math.ceil((end - start) / step + 1e-9))
    edges = start + step * np.arange(n_steps + 1, dtype=np.float64)
    edges[-1] = max(edges[-1], end + 1.0)
    bucket = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, n_steps - 1)
    per_step = np.bincount(bucket * n_items + items, minlength=n_steps * n_items)
    counts = np.zeros((n_steps + 1, n_items), dtype=np.int32)
    np.cumsum(per_step.reshape(n_steps, n_items), axis=0, out=counts[1:])
    return edges, counts


class PopularityArm(Arm[PopularityConfig]):
    """All-time and windowed rating counts (see the module docstring)."""

    name = "popularity"
    description = "how many people rated it, overall and around the user's time"

    def __init__(
        self,
        config: PopularityConfig,
        *,
        count: npt.NDArray[np.int32],
        mean: npt.NDArray[np.float32],
        score: npt.NDArray[np.float32],
        first: npt.NDArray[np.float64],
        edges: npt.NDArray[np.float64],
        steps: npt.NDArray[np.int32],
    ) -> None:
        super().__init__(config)
        self.count, self.mean, self.bayesian = count, mean, score
        self.first, self.edges, self.steps = first, edges, steps
        self.window = config.window_days[0] * DAY
        self._log_count = np.log1p(count.astype(np.float32))
        self._order = np.argsort(-score, kind="stable")
        entries = max(1, int(SCORE_CACHE_MB * 2**20) // (4 * max(count.size, 1)))
        self._scores_between = functools.lru_cache(maxsize=entries)(self._score_between)

    @classmethod
    def config_type(cls) -> type[PopularityConfig]:
        return PopularityConfig

    @classmethod
    def files(cls) -> tuple[str, ...]:
        return (
            "popularity_count.npy", "popularity_mean.npy", "popularity_score.npy",
            "popularity_first.npy", "popularity_edges.npy", "popularity_steps.npy",
        )  # fmt: skip

    @classmethod
    def fit(cls, data: TrainingSet, config: PopularityConfig) -> PopularityArm:
        ratings, n_items = data.ratings, data.catalog.size
        count, mean, score = bayesian_average(ratings, config.prior_count)
        first = np.full(n_items, np.inf)
        np.minimum.at(first, ratings.indices, data.times.data)
        edges, steps = cumulative_counts(
            ratings.indices.astype(np.int64), data.times.data, n_items, config
        )
        chosen = config.model_copy(update={"window_days": config.window_days[:1]})
        return cls(chosen, count=count, mean=mean, score=score, first=first, edges=edges,
                   steps=steps)  # fmt: skip

    @classmethod
    def tune(
        cls, data: TrainingSet, probe: Probe, config: PopularityConfig
    ) -> tuple[PopularityArm, Any]:
        """The served window with the best NDCG@10 on ``probe``."""
        fitted = cls.fit(data, config)
        trials = []
        best: tuple[float, PopularityArm] | None = None
        users = [data.history(int(user)) for user in probe.users]
        for days in config.window_days:
            arm = fitted.with_window(days)
            ndcg = probe.ndcg(data, np.stack([arm.score(user).values for user in users]))
            trials.append({"window_days": days, "ndcg_at_10": round(ndcg, 5)})
            if best is None or ndcg > best[0] + 1e-12:
                best = (ndcg, arm)
        assert best is not None
        return best[1], trials

    def with_window(self, days: float) -> PopularityArm:
        """The same counts serving a ``days`` window (0: all time)."""
        config = self.config.model_copy(update={"window_days": [days]})
        return PopularityArm(config, count=self.count, mean=self.mean, score=self.bayesian,
                             first=self.first, edges=self.edges, steps=self.steps)  # fmt: skip

    def save(self, writer: ArtifactWriter) -> dict[str, Any]:
        writer.save_array("popularity_count.npy", self.count)
        writer.save_array("popularity_mean.npy", self.mean)
        writer.save_array("popularity_score.npy", self.bayesian)
        writer.save_array("popularity_first.npy", self.first)
        writer.save_array("popularity_edges.npy", self.edges)
        writer.save_array("popularity_steps.npy", self.steps)
        step = float(self.edges[1] - self.edges[0]) / DAY if self.edges.size > 1 else 0.0
        return {"steps": int(self.edges.size - 1), "step_days": round(step, 2)}

    @classmethod
    def load(
        cls,
        artifacts: ArtifactDir,
        catalog: Catalog,
        config: PopularityConfig,
        details: dict[str, Any],
    ) -> PopularityArm:
        return cls(
            config,
            count=artifacts.array("popularity_count.npy"),
            mean=artifacts.array("popularity_mean.npy"),
            score=artifacts.array("popularity_score.npy"),
            first=artifacts.array("popularity_first.npy"),
            edges=artifacts.array("popularity_edges.npy"),
            steps=artifacts.array("popularity_steps.npy"),
        )

    @property
    def best_rated(self) -> IndexArray:
        """Movie rows by Bayesian average, best first (the catalog's "popular" list)."""
        order: IndexArray = self._order
        return order

    def cold_start(self) -> FloatArray:
        """Scores for a user with no ratings, whose time says nothing: ``log(1 + all-time
        ratings)``, ties broken by the Bayesian average (chosen on validation over recent
        counts and the Bayesian average alone: docs/ranking.md)."""
        scores: FloatArray = (self._log_count + 1e-3 * self.bayesian).astype(np.float32)
        return scores

    def _step(self, when: float) -> int:
        """The last step edge at or before ``when`` (counts there exclude anything later)."""
        return int(np.clip(np.searchsorted(self.edges, when, side="right") - 1, 0,
                           self.edges.size - 1))  # fmt: skip

    def _window_steps(self, now: float, days: float) -> tuple[int, int]:
        """The step edges ``(end, start)`` around the ``days`` before ``now`` (0: all time)."""
        return self._step(now), 0 if days <= 0 else self._step(now - days * DAY)

    def window_counts(self, now: float, days: float, rows: IndexArray | None = None) -> FloatArray:
        """Ratings of each movie (or of ``rows``) in the ``days`` before ``now`` (0: all)."""
        end, start = self._window_steps(now, days)
        counts: FloatArray
        if rows is None:
            counts = (self.steps[end] - self.steps[start]).astype(np.float32)
        else:
            counts = (self.steps[end, rows] - self.steps[start, rows]).astype(np.float32)
        return counts

    def score(self, user: History) -> ArmScores:
        """``log(1 + ratings in the window)``, ties broken by all-time counts.

        The scores depend only on the two time steps around the window, and users share
        steps (everyone rating this month shares the latest), so the vectors are kept per
        pair of steps, within :data:`SCORE_CACHE_MB`, and handed out read-only."""
        return ArmScores(self._scores_between(*self._window_steps(user.now, self.window / DAY)))

    def _score_between(self, end: int, start: int) -> FloatArray:
        """The served scores from the counts between step edges ``start`` and ``end``."""
        recent = np.log1p((self.steps[end] - self.steps[start]).astype(np.float32))
        scores: FloatArray = (recent + 1e-3 * self._log_count).astype(np.float32)
        scores.flags.writeable = False
        return scores

    def features(
        self, user: History, scores: ArmScores, candidates: IndexArray
    ) -> dict[str, FloatArray]:
        out = {
            "popularity": scores.at(candidates),
            "popularity_count": self._log_count[candidates],
            "popularity_mean": self.mean[candidates],
        }
        for days in self.config.feature_windows_days:
            counts = self.window_counts(user.now, days, candidates)
            out[f"popularity_{days:g}d"] = np.log1p(counts)
        first = self.first[candidates]
        seen = np.where(np.isfinite(first), (user.now - first) / YEAR, np.nan)
        out["popularity_age"] = seen.astype(np.float32)
        return out

    def feature_names(self) -> tuple[str, ...]:
        windows = tuple(f"popularity_{days:g}d" for days in self.config.feature_windows_days)
        return ("popularity", "popularity_count", "popularity_mean", *windows, "popularity_age")
