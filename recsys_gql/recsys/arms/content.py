"""Content: similarity of a movie's text embedding to the movies the user liked.

Each movie's ``k`` nearest movies by embedding are found at training time (the content graph,
:class:`~recsys_gql.recsys.content.ContentGraph`); a user's content score for a movie is the
weighted mean similarity to the liked movies that have it as a neighbour. A neighbourhood
keeps separate tastes apart, where one averaged profile vector blurs them. Weights are
``rating − shrunk user mean + 0.5``, positive ones only (:func:`profile_weights`).

The ranking stage also gets the same score over the user's ``recent_likes`` most recent
liked movies: taste drifts, and held-out ratings are a user's next ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

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
from recsys_gql.recsys.content import ContentGraph

if TYPE_CHECKING:
    from recsys_gql.artifacts import ArtifactDir, ArtifactWriter


class ContentConfig(ArmConfig):
    """The content arm over the embedding neighbour graph."""

    profile_shrink: float = Field(2.0, ge=0.0, description="pseudo-ratings in the user mean")
    recent_likes: int = Field(10, ge=1, description="liked movies of the 'recent' feature")
    candidates: int = Field(50, ge=0, le=10_000, description="movies it offers the ranker")


def profile_weights(ratings: FloatArray, global_mean: float, shrink: float) -> FloatArray:
    """Weights of a user's rated movies in the content profile.

    ``w = r − μ̃ + 0.5`` with ``μ̃`` the user's mean shrunk toward the global mean by ``shrink``
    pseudo-ratings; only positive weights are kept, so the profile is built from what the user
    liked relative to their own habit, and a lone low rating does not become a taste.
    """
    if ratings.size == 0:
        return ratings.astype(np.float32)
    mean = (float(ratings.sum()) + shrink * global_mean) / (ratings.size + shrink)
    weights = ratings.astype(np.float64) - mean + 0.5
    return np.maximum(weights, 0.0).astype(np.float32)


@dataclass(frozen=True)
class Profile:
    """What a content score was built from."""

    weights: FloatArray
    """Weight of each rated movie (0 for movies not liked)."""
    recent: ArmScores
    """The score over the most recent liked movies only."""


class ContentArm(Arm[ContentConfig]):
    """Scores from the content graph; ``global_mean`` is the training ratings' mean."""

    name = "content"
    description = "similar plots, genres and tags"

    def __init__(self, config: ContentConfig, graph: ContentGraph, global_mean: float) -> None:
        super().__init__(config)
        self.graph = graph
        self.global_mean = global_mean

    @classmethod
    def config_type(cls) -> type[ContentConfig]:
        return ContentConfig

    @classmethod
    def files(cls) -> tuple[str, ...]:
        return ()  # the neighbour graph is the catalog's (``similar`` reads it too)

    @classmethod
    def fit(cls, data: TrainingSet, config: ContentConfig) -> ContentArm:
        mean = float(data.ratings.data.mean()) if data.ratings.nnz else 3.5
        return cls(config, data.catalog.graph, mean)

    def save(self, writer: ArtifactWriter) -> dict[str, Any]:
        return {"neighbours": self.graph.k, "global_mean": self.global_mean}

    @classmethod
    def load(
        cls,
        artifacts: ArtifactDir,
        catalog: Catalog,
        config: ContentConfig,
        details: dict[str, Any],
    ) -> ContentArm:
        return cls(config, catalog.graph, float(details["global_mean"]))

    def weights(self, user: History) -> FloatArray:
        """Each rated movie's weight in the user's profile."""
        return profile_weights(user.ratings, self.global_mean, self.config.profile_shrink)

    def score(self, user: History) -> ArmScores:
        weights = self.weights(user)
        items, values = self.graph.sparse_scores(user.rows, weights)
        liked = np.flatnonzero(weights > 0)
        latest = liked[np.argsort(user.recency[liked], kind="stable")[: self.config.recent_likes]]
        recent_items, recent_values = self.graph.sparse_scores(user.rows[latest], weights[latest])
        recent = ArmScores(recent_values, recent_items)
        return ArmScores(values, items, evidence=Profile(weights, recent))

    def features(
        self, user: History, scores: ArmScores, candidates: IndexArray
    ) -> dict[str, FloatArray]:
        profile: Profile = scores.evidence
        return {"content": scores.at(candidates), "content_recent": profile.recent.at(candidates)}

    def feature_names(self) -> tuple[str, ...]:
        return ("content", "content_recent")

    def contributions(self, user: History, scores: ArmScores, targets: IndexArray) -> Contributions:
        profile: Profile = scores.evidence
        return self.graph.contributions(targets, user.rows, profile.weights)
