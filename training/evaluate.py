"""Offline evaluation: a temporal hold-out, tuning on a validation split, and a comparison of
the hybrid against popularity, ALS, content-only, TF-IDF and EASE^R.

Protocol: each user's latest ``holdout`` share of ratings (by timestamp) is the test set;
relevant = a held-out rating >= ``relevant_threshold``; every model ranks the full catalog minus
the user's training movies. Tuning (ALS hyper-parameters, α, the ramp, the popularity prior,
EASE's λ) uses a validation split carved the same way out of the training part; the test part is
touched once, by the final comparison.

The hybrid is scored with the engine's own functions (fold-in, content profile, normalisation),
so the figures describe what the server returns.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
from recsys_gql.recsys.collaborative import CollaborativeModel
from recsys_gql.recsys.hybrid import (
    apply_prior,
    normalise_rows,
    popularity_prior,
    profile_weights,
    ramped_alpha,
    ramped_prior_weight,
)
from tqdm import tqdm

from recsys_gql.recsys.content import ContentGraph
from recsys_gql.recsys.engine import HybridSettings, arm_scores
from recsys_gql.recsys.vocab import IdVocab
from training.config import AlsConfig, EvalConfig, PopularityConfig
from training.fit import fit_als, popularity, rating_matrix
from training.metrics import Metrics, ranking_metrics, top_k_excluding

Matrix = npt.NDArray[np.float32]


@dataclass
class SplitData:
    """One (train, test) split laid out for scoring."""

    items: IdVocab
    users: IdVocab
    train: sp.csr_matrix
    eval_rows: npt.NDArray[np.int64]
    relevant: npt.NDArray[np.bool_]
    exclude: npt.NDArray[np.bool_]
    item_counts: npt.NDArray[np.int32]

    @classmethod
    def build(
        cls,
        train: pd.DataFrame,
        test: pd.DataFrame,
        items: IdVocab,
        threshold: float,
        *,
        max_users: int | None = None,
        seed: int = 0,
    ) -> SplitData:
        """Lay out ``train``/``test`` over the catalog ``items``; with ``max_users``, only a
        seeded random sample of that many users with relevant held-out items is evaluated."""
        users = IdVocab.from_values(train["userId"].to_numpy())
        matrix = rating_matrix(train, users, items)
        liked = test[test["rating"] >= threshold]
        liked = liked[liked["userId"].isin(users.ids)]
        relevant_all = sp.csr_matrix(
            (
                np.ones(len(liked), dtype=bool),
                (users.indices(liked["userId"]), items.indices(liked["movieId"])),
            ),
            shape=matrix.shape,
        )
        eval_rows = np.flatnonzero(np.diff(relevant_all.indptr) > 0).astype(np.int64)
        if max_users is not None and eval_rows.size > max_users:
            rng = np.random.default_rng(seed)
            eval_rows = np.sort(rng.choice(eval_rows, size=max_users, replace=False))
        return cls(
            items=items,
            users=users,
            train=matrix,
            eval_rows=eval_rows,
            relevant=relevant_all[eval_rows].toarray(),
            exclude=matrix[eval_rows].toarray() > 0,
            item_counts=np.diff(matrix.tocsc().indptr).astype(np.int32),
        )

    def user_ratings(self, row: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Training item rows and ratings of one user row."""
        start, end = self.train.indptr[row], self.train.indptr[row + 1]
        return (
            self.train.indices[start:end].astype(np.int64),
            self.train.data[start:end].astype(np.float32),
        )

    def score(self, scores: npt.NDArray[np.floating]) -> Metrics:
        """Metrics of a (eval users x items) score matrix."""
        top = top_k_excluding(scores, self.exclude, 20)
        return ranking_metrics(top, self.relevant, self.item_counts)


@dataclass
class Arms:
    """Raw arm scores of every evaluated user (content without its prior), their rating counts
    and the popularity prior of the split."""

    collab: Matrix
    content: Matrix
    n_ratings: npt.NDArray[np.int64]
    prior: Matrix


def compute_arms(
    split: SplitData,
    item_factors: Matrix,
    als: AlsConfig,
    graph: ContentGraph,
    settings: HybridSettings,
    ratings_of: Callable[[int], tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]
    | None = None,
) -> Arms:
    """Both arms for every evaluated user via the engine's :func:`arm_scores` (the prior is
    added later, at each weight tried)."""
    settings = dataclasses.replace(settings, popularity_weight=0.0)
    model = CollaborativeModel(
        item_factors, regularization=als.regularization, alpha=als.alpha, weighting=als.weighting
    )
    global_mean = float(split.train.data.mean())
    shape = (split.eval_rows.size, len(split.items))
    collab, content = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    counts = np.zeros(split.eval_rows.size, dtype=np.int64)
    for k, row in enumerate(split.eval_rows):
        rows, values = (ratings_of or split.user_ratings)(int(row))
        arms = arm_scores(model, graph, rows, values, global_mean, settings)
        collab[k], content[k], counts[k] = arms.collab, arms.content, rows.size
    prior = popularity_prior(split.item_counts)
    return Arms(collab=collab, content=content, n_ratings=counts, prior=prior)


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
        cls,
        arms: Arms,
        exclude: npt.NDArray[np.bool_],
        popularity_weight: float,
        ramp: float,
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
        """The served blend for every user: per-user ramped α."""
        a = np.array(
            [ramped_alpha(alpha, int(n), self.ramp) for n in self.n_ratings], dtype=np.float32
        )[:, None]
        result: Matrix = a * self.collab + (1.0 - a) * self.content
        return result


def popularity_scores(split: SplitData, config: PopularityConfig) -> Matrix:
    """Bayesian-average popularity from the training part, the same list for every user."""
    prior = popularity(split.train, config)
    return np.broadcast_to(prior.score, (split.eval_rows.size, len(split.items)))


def tfidf_scores(split: SplitData, tfidf: sp.csr_matrix, shrink: float) -> Matrix:
    """TF-IDF content baseline: the same rating-weighted profile, over TF-IDF rows."""
    global_mean = float(split.train.data.mean())
    out = np.zeros((split.eval_rows.size, len(split.items)), dtype=np.float32)
    for k, row in enumerate(split.eval_rows):
        rows, values = split.user_ratings(int(row))
        weights = profile_weights(values, global_mean, shrink)
        profile = sp.csr_matrix(weights[None, :]) @ tfidf[rows]
        out[k] = (tfidf @ profile.T).toarray().ravel()
    return out


def ease_scores(split: SplitData, lam: float) -> Matrix:
    """EASE^R (Steck 2019): ``B = I − P·diag(1/diag(P))``, ``P = (XᵀX + λI)⁻¹``, X binary."""
    binary = split.train.copy()
    binary.data = np.ones_like(binary.data)
    gram = (binary.T @ binary).toarray().astype(np.float32)
    gram[np.diag_indices_from(gram)] += lam
    inverse = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
    weights = -inverse / np.diag(inverse)
    weights[np.diag_indices_from(weights)] = 0.0
    return np.asarray(binary[split.eval_rows] @ weights, dtype=np.float32)


def tune_als(
    split: SplitData, graph: ContentGraph, config: EvalConfig, base: AlsConfig, seed: int
) -> tuple[AlsConfig, list[dict[str, Any]]]:
    """Grid-search ALS hyper-parameters by ALS-only NDCG@10 on the validation split."""
    trials: list[dict[str, Any]] = []
    grid = list(
        itertools.product(
            config.als_factors, config.als_regularization, config.als_alpha, config.als_weighting
        )
    )
    best: tuple[float, AlsConfig] | None = None
    for factors, reg, alpha, weighting in tqdm(grid, desc="tune ALS", leave=False):
        als = base.model_copy(
            update={
                "factors": factors, "regularization": reg, "alpha": alpha,
                "weighting": weighting, "seed": seed,
            }
        )  # fmt: skip
        fitted = fit_als(split.train, als, show_progress=False)
        arms = compute_arms(split, fitted.item_factors, als, graph, HybridSettings())
        metrics = split.score(arms.collab)
        trials.append({**als.model_dump(), "ndcg_at_10": metrics.ndcg_at_10})
        if best is None or metrics.ndcg_at_10 > best[0]:
            best = (metrics.ndcg_at_10, als)
    assert best is not None
    return best[1], trials


Slice = tuple[SplitData, Arms]
"""A set of users to score: the split (relevance, exclusions) and their raw arms."""


def tune_blend(
    full: Slice, cold: list[Slice], config: EvalConfig
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Grid-search α, the ramp and the content arm's prior on validation.

    The objective averages NDCG@10 and Recall@20 (the two headline metrics) on the full
    validation users and, with equal weight, over the cold-start slices (the same users cut to
    their first n ratings), so the ramp and the prior are chosen where they matter.

    Blends within ``config.tie_tolerance`` of the best objective are treated as tied, and the
    most content-led of them (smallest α, then largest ramp) is chosen: held-out accuracy on
    MovieLens rewards recommending popular films, and among equally accurate blends the one
    that follows the user's own taste is the better product.
    """
    trials: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for weight, ramp in itertools.product(config.popularity_weights, config.ramps):
        prepared = [
            (split, NormalisedArms.of(arms, split.exclude, weight, ramp))
            for split, arms in [full, *cold]
        ]
        for alpha in config.alphas:
            metrics = [split.score(arms.blend(alpha)) for split, arms in prepared]
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


def tune_ease(split: SplitData, config: EvalConfig) -> tuple[float, list[dict[str, float]]]:
    """Pick EASE's λ by NDCG@10 on validation."""
    trials = [
        {"lambda": lam, "ndcg_at_10": split.score(ease_scores(split, lam)).ndcg_at_10}
        for lam in tqdm(config.ease_lambdas, desc="tune EASE", leave=False)
    ]
    best = max(trials, key=lambda t: t["ndcg_at_10"])
    return float(best["lambda"]), trials


def cold_slices(
    split: SplitData,
    train: pd.DataFrame,
    item_factors: Matrix,
    als: AlsConfig,
    graph: ContentGraph,
    settings: HybridSettings,
    sizes: list[int],
) -> list[Slice]:
    """The evaluated users cut to their first ``k`` training ratings (by time), one slice per
    ``k``: same relevant items, only those ``k`` movies excluded."""
    ordered = train.sort_values(["userId", "timestamp", "movieId"], kind="stable")
    user_rows = split.users.indices(ordered["userId"].to_numpy())
    item_rows = split.items.indices(ordered["movieId"].to_numpy())
    values_all = ordered["rating"].to_numpy(dtype=np.float32)
    starts = np.flatnonzero(np.r_[True, user_rows[1:] != user_rows[:-1]])
    ends = np.r_[starts[1:], user_rows.size]
    history = {
        int(user_rows[a]): (item_rows[a:b], values_all[a:b])
        for a, b in zip(starts, ends, strict=True)
    }
    slices: list[Slice] = []
    for k in sizes:

        def first_k(row: int, k: int = k) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
            rows, values = history[row]
            return rows[:k], values[:k]

        arms = compute_arms(split, item_factors, als, graph, settings, first_k)
        exclude = np.zeros_like(split.exclude)
        for i, row in enumerate(split.eval_rows):
            exclude[i, first_k(int(row))[0]] = True
        cut = dataclasses.replace(split, exclude=exclude)
        slices.append((cut, arms))
    return slices


def cold_start_study(
    slices: list[Slice], sizes: list[int], settings: HybridSettings
) -> list[dict[str, float]]:
    """On each cold slice: the ramped α against a fixed α and against each arm alone."""
    rows_out = []
    for k, (cut, arms) in zip(sizes, slices, strict=True):

        def ndcg(alpha: float, ramp: float, arms: Arms = arms, cut: SplitData = cut) -> float:
            normalised = NormalisedArms.of(arms, cut.exclude, settings.popularity_weight, ramp)
            return cut.score(normalised.blend(alpha)).ndcg_at_10

        rows_out.append(
            {
                "ratings": float(k),
                "ramped": ndcg(settings.alpha, settings.ramp),
                "fixed_alpha": ndcg(settings.alpha, 0.0),
                "content_only": ndcg(0.0, 0.0),
                "als_only": ndcg(1.0, 0.0),
                "effective_alpha": ramped_alpha(settings.alpha, k, settings.ramp),
            }
        )
    return rows_out
