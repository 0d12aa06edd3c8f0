"""Offline evaluation: the temporal protocol, the models compared, and how each is scored.

Protocol: each user's latest ``holdout`` share of ratings (by timestamp) is the test set;
relevant = a held-out rating >= ``relevant_threshold``; every model ranks the full catalog minus
the user's training movies. Tuning uses a validation split carved the same way out of the
training part; the test part is touched once, by the final comparison.

Every served model is scored with the engine's own code: the arms' :meth:`score`, the ranking
stage's :func:`~recsys_gql.recsys.ranker.rank` and the blend's normalisation, on arms fitted by
:func:`training.stack.fit_stack` (what ``recsys-gql train`` runs) on the training part. The
content arm's texts only hold tags written before their author's cut-off
(:func:`training.text.tags_until_cutoff`).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from recsys_gql.recsys import features
from recsys_gql.recsys.arm import AnyArm, Catalog, History, TrainingSet
from recsys_gql.recsys.arms.als import AlsArm
from recsys_gql.recsys.arms.content import ContentArm, profile_weights
from recsys_gql.recsys.arms.ease import fit_weights
from recsys_gql.recsys.arms.popularity import PopularityArm, bayesian_average
from recsys_gql.recsys.blend import (
    apply_prior,
    normalise_rows,
    popularity_prior,
    ramped_alpha,
    ramped_prior_weight,
)
from recsys_gql.recsys.ranker import Ranker, rank
from recsys_gql.recsys.vocab import IdVocab
from training.config import EvalConfig
from training.fit import training_set
from training.metrics import Metrics, per_user_metrics, summarise, top_k_excluding

Matrix = npt.NDArray[np.float32]
Tops = npt.NDArray[np.int64]
"""Each evaluated user's 20 best movies (rows), best first."""
K = 20


@dataclass
class SplitData:
    """One (train, test) split: the training set and each evaluated user's relevant movies."""

    data: TrainingSet
    users: IdVocab
    eval_rows: npt.NDArray[np.int64]
    relevant: npt.NDArray[np.bool_]
    exclude: npt.NDArray[np.bool_]
    item_counts: npt.NDArray[np.int32]

    @classmethod
    def build(
        cls,
        train: pd.DataFrame,
        test: pd.DataFrame,
        catalog: Catalog,
        threshold: float,
        *,
        max_users: int | None = None,
        seed: int = 0,
    ) -> SplitData:
        """Lay out ``train``/``test`` over the catalog; with ``max_users``, only a seeded
        random sample of that many users with relevant held-out items is evaluated."""
        users = IdVocab.from_values(train["userId"].to_numpy())
        data = training_set(train, users, catalog)
        liked = test[(test["rating"] >= threshold) & test["userId"].isin(users.ids)]
        relevant_all = sp.csr_matrix(
            (
                np.ones(len(liked), dtype=bool),
                (users.indices(liked["userId"]), catalog.items.indices(liked["movieId"])),
            ),
            shape=data.ratings.shape,
        )
        eval_rows = np.flatnonzero(np.diff(relevant_all.indptr) > 0).astype(np.int64)
        if max_users is not None and eval_rows.size > max_users:
            rng = np.random.default_rng(seed)
            eval_rows = np.sort(rng.choice(eval_rows, size=max_users, replace=False))
        return cls(
            data=data,
            users=users,
            eval_rows=eval_rows,
            relevant=relevant_all[eval_rows].toarray(),
            exclude=data.ratings[eval_rows].toarray() > 0,
            item_counts=np.diff(data.ratings.tocsc().indptr).astype(np.int32),
        )

    def histories(self, first: int | None = None) -> list[History]:
        """Each evaluated user's training ratings (only their first ``first``, by time)."""
        out = []
        for row in self.eval_rows.tolist():
            user = self.data.history(row)
            if first is not None:
                keep = np.lexsort((user.rows, user.times))[:first]
                user = History.build(user.rows[keep], user.ratings[keep], user.times[keep],
                                     self.data.now)  # fmt: skip
            out.append(user)
        return out

    def cut(self, first: int) -> tuple[SplitData, list[History]]:
        """The users cut to their first ``first`` ratings: same relevant movies, only those
        ratings excluded."""
        users = self.histories(first)
        exclude = np.zeros_like(self.exclude)
        for k, user in enumerate(users):
            exclude[k, user.rows] = True
        return dataclasses.replace(self, exclude=exclude), users

    def tops(self, scores: npt.NDArray[np.floating]) -> Tops:
        """The best ``K`` unexcluded movies of a (users x catalog) score matrix."""
        return top_k_excluding(scores, self.exclude, K)

    def per_user(self, tops: Tops) -> dict[str, npt.NDArray[np.float64]]:
        """Per-user metrics of ``tops``."""
        return per_user_metrics(tops, self.relevant)

    def metrics(self, tops: Tops) -> Metrics:
        """Mean metrics of ``tops`` (coverage and popularity over all the lists)."""
        return summarise(tops, self.relevant, self.item_counts)


def arm_matrix(arm: AnyArm, users: Sequence[History], n_items: int) -> Matrix:
    """An arm's raw scores of every movie for each user (users x catalog)."""
    out = np.zeros((len(users), n_items), dtype=np.float32)
    targets = np.arange(n_items, dtype=np.int64)
    for k, user in enumerate(users):
        if user.size:
            out[k] = arm.score(user).at(targets)
    return out


@dataclass
class Arms:
    """Raw ALS and content scores of every evaluated user (content without its prior), their
    rating counts and the popularity prior of the split: what the linear blend is made of."""

    collab: Matrix
    content: Matrix
    n_ratings: npt.NDArray[np.int64]
    prior: Matrix

    @classmethod
    def of(cls, split: SplitData, arms: Sequence[AnyArm], users: Sequence[History]) -> Arms:
        """Both arms of ``arms`` for each of ``users``."""
        als = next(a for a in arms if isinstance(a, AlsArm))
        content = next(a for a in arms if isinstance(a, ContentArm))
        n = split.data.catalog.size
        return cls(
            collab=arm_matrix(als, users, n),
            content=arm_matrix(content, users, n),
            n_ratings=np.array([u.size for u in users], dtype=np.int64),
            prior=popularity_prior(split.item_counts),
        )


@dataclass
class NormalisedArms:
    """Arms normalised over each user's candidates as the engine does, for one ramp ``k``
    and prior weight, ready to blend at any α."""

    collab: Matrix
    content: Matrix
    n_ratings: npt.NDArray[np.int64]
    ramp: float

    @classmethod
    def of(
        cls, arms: Arms, exclude: npt.NDArray[np.bool_], popularity_weight: float, ramp: float
    ) -> NormalisedArms:
        """Apply each user's ramped prior to the content arm, then normalise both arms."""
        weights = np.array(
            [ramped_prior_weight(popularity_weight, int(n), ramp) for n in arms.n_ratings],
            dtype=np.float32,
        )
        content = apply_prior(arms.content, arms.prior[None, :], weights[:, None])
        return cls(
            normalise_rows(arms.collab, exclude),
            normalise_rows(content, exclude),
            arms.n_ratings,
            ramp,
        )

    def blend(self, alpha: float) -> Matrix:
        """The blend for every user at a per-user ramped α (``ramp`` 0: α itself)."""
        a = np.array(
            [ramped_alpha(alpha, int(n), self.ramp) for n in self.n_ratings], dtype=np.float32
        )[:, None]
        result: Matrix = a * self.collab + (1.0 - a) * self.content
        return result


Slice = tuple[SplitData, Arms]
"""A set of users to score: the split (relevance, exclusions) and their raw arms."""


def tune_blend(
    full: Slice, cold: list[Slice], config: EvalConfig
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Grid-search α, the ramp and the content arm's prior of the linear blend on validation.

    The objective averages NDCG@10 and Recall@20 on the full validation users and, with equal
    weight, over the cold-start slices (the same users cut to their first n ratings).
    Blends within ``config.tie_tolerance`` of the best objective are treated as tied, and the
    most content-led of them (smallest α, then largest ramp) is chosen: among equally accurate
    blends the one that follows the user's own taste is the better product.
    """
    trials: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for weight, ramp in itertools.product(config.popularity_weights, config.ramps):
        prepared = [
            (split, NormalisedArms.of(arms, split.exclude, weight, ramp))
            for split, arms in [full, *cold]
        ]
        for alpha in config.alphas:
            metrics = [split.metrics(split.tops(arms.blend(alpha))) for split, arms in prepared]
            scores = [(m.ndcg_at_10 + m.recall_at_20) / 2 for m in metrics]
            cold_mean = float(np.mean(scores[1:])) if cold else scores[0]
            objective = 0.5 * scores[0] + 0.5 * cold_mean
            trial = {
                "alpha": alpha, "ramp": ramp, "popularity_weight": weight,
                "ndcg_at_10": metrics[0].ndcg_at_10, "recall_at_20": metrics[0].recall_at_20,
                "cold_score": cold_mean, "objective": objective,
            }  # fmt: skip
            trials.append(trial)
            if best is None or objective > best["objective"] + 1e-12:
                best = trial
    assert best is not None
    tied = [t for t in trials if t["objective"] >= (1 - config.tie_tolerance) * best["objective"]]
    chosen = min(tied, key=lambda t: (t["alpha"], -t["ramp"], -t["objective"]))
    return {**chosen, "best_objective": best["objective"]}, trials


def ease_baseline(split: SplitData, lam: float) -> Matrix:
    """EASE^R as published (Steck 2019): every movie, the user's movies unweighted."""
    columns = np.arange(split.data.catalog.size, dtype=np.int64)
    weights = fit_weights(split.data.ratings, columns, lam)
    binary = split.data.ratings[split.eval_rows].copy()
    binary.data = np.ones_like(binary.data)
    return np.asarray(binary @ weights, dtype=np.float32)


def tune_ease(split: SplitData, lambdas: Sequence[float]) -> tuple[float, list[dict[str, float]]]:
    """EASE^R's λ with the best NDCG@10 on validation."""
    trials = [
        {
            "lambda": lam,
            "ndcg_at_10": split.metrics(split.tops(ease_baseline(split, lam))).ndcg_at_10,
        }
        for lam in lambdas
    ]
    best = max(trials, key=lambda t: t["ndcg_at_10"])
    return float(best["lambda"]), trials


def popularity_tops(split: SplitData, prior_count: float) -> Tops:
    """Bayesian-average popularity from the training part, the same list for every user."""
    _, _, score = bayesian_average(split.data.ratings, prior_count)
    return split.tops(np.broadcast_to(score, split.exclude.shape))


def tfidf_tops(split: SplitData, tfidf: sp.csr_matrix, shrink: float) -> Tops:
    """TF-IDF content baseline: the same rating-weighted profile, over TF-IDF rows."""
    global_mean = float(split.data.ratings.data.mean())
    out = np.zeros(split.exclude.shape, dtype=np.float32)
    for k, user in enumerate(split.histories()):
        weights = profile_weights(user.ratings, global_mean, shrink)
        profile = sp.csr_matrix(weights[None, :]) @ tfidf[user.rows]
        out[k] = (tfidf @ profile.T).toarray().ravel()
    return split.tops(out)


def ranked_tops(
    split: SplitData, arms: Sequence[AnyArm], ranker: Ranker, users: Sequence[History]
) -> Tops:
    """The served default for each user: the ranking stage's 20 best, exactly as the engine
    computes them (``users`` with no ratings get the popularity arm's cold-start list)."""
    catalog = split.data.catalog
    out = np.zeros((len(users), K), dtype=np.int64)
    for k, user in enumerate(users):
        allowed = ~split.exclude[k]
        if user.size == 0:
            out[k] = cold_start_top(arms, allowed)
            continue
        result = rank(ranker, features.score_arms(arms, user), catalog.genres, catalog.years,
                      allowed, K)  # fmt: skip
        rows = result.rows
        if rows.size < K:  # fewer candidates than asked: pad (allowed movies first)
            rest = np.flatnonzero(~np.isin(np.arange(catalog.size), rows))
            rest = rest[np.argsort(~allowed[rest], kind="stable")]
            rows = np.concatenate([rows, rest[: K - rows.size]])
        out[k] = rows[:K]
    return out


def cold_start_top(arms: Sequence[AnyArm], allowed: npt.NDArray[np.bool_]) -> Tops:
    """The engine's answer for a user without ratings: the popularity arm's cold-start list."""
    popularity = next(a for a in arms if isinstance(a, PopularityArm))
    scores = np.where(allowed, popularity.cold_start(), -np.inf)
    top: Tops = np.argsort(-scores, kind="stable")[:K]
    return top


def bootstrap(
    per_user: dict[str, dict[str, npt.NDArray[np.float64]]],
    models: Sequence[str],
    metrics: Sequence[str],
    *,
    against: str,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    """95% percentile intervals over users (one resample of users shared by every model, so
    ratios are paired): each model's mean of each metric, and its ratio to ``against``."""
    n = next(iter(per_user.values()))[metrics[0]].size
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(resamples, n))
    out: dict[str, Any] = {"resamples": resamples, "users": int(n), "against": against}
    for model in models:
        entry: dict[str, Any] = {}
        for metric in metrics:
            values = per_user[model][metric]
            means = values[picks].mean(axis=1)
            base = per_user[against][metric][picks].mean(axis=1)
            ratio = np.divide(means, base, out=np.full_like(means, np.nan), where=base > 0)
            entry[metric] = {
                "mean": float(values.mean()),
                "ci95": [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))],
                "ratio": float(values.mean() / max(per_user[against][metric].mean(), 1e-12)),
                "ratio_ci95": [
                    float(np.nanpercentile(ratio, 2.5)),
                    float(np.nanpercentile(ratio, 97.5)),
                ],
            }
        out[model] = entry
    return out


ACTIVITY_BINS = (1, 20, 50, 100, 200, 500)
"""Lower edges of the rating-count bins of the NDCG@10-by-activity figure."""


def by_activity(
    per_user: dict[str, dict[str, npt.NDArray[np.float64]]], n_ratings: npt.NDArray[np.int64]
) -> dict[str, Any]:
    """Mean NDCG@10 of each model over users grouped by their number of training ratings."""
    edges = [*ACTIVITY_BINS, np.iinfo(np.int64).max]
    bins = []
    for low, high in itertools.pairwise(edges):
        members = (n_ratings >= low) & (n_ratings < high)
        label = f"{low}+" if high == edges[-1] else f"{low}-{high - 1}"
        bins.append((label, members))
    return {
        "bins": [label for label, _ in bins],
        "users": [int(members.sum()) for _, members in bins],
        "ndcg_at_10": {
            model: [
                float(values["ndcg_at_10"][members].mean()) if members.any() else None
                for _, members in bins
            ]
            for model, values in per_user.items()
        },
    }
