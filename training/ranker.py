"""Training the ranking stage: LightGBM LambdaRank on the training data's own validation split.

Every arm is fitted on the data without each user's latest ratings (:mod:`training.holdout`);
for each user with held-out likes the engine's own code (:func:`~recsys_gql.recsys.features.
candidates` and :func:`~recsys_gql.recsys.features.matrix`) turns their history into a group of
candidate rows, labelled 1 when the held-out ratings include the movie with a rating at or
above the threshold. The same users also appear cut to their first and to their latest ``n``
ratings (:func:`histories`), so short histories are in the training data. A share of
the users decides, by their NDCG@10, when to stop adding trees; the model is then refitted on
all users with that many trees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from recsys_gql.recsys import features
from recsys_gql.recsys.arm import AnyArm, History, Probe, TrainingSet
from training.config import RankerConfig

Report = Callable[[str], None]


@dataclass(frozen=True)
class Examples:
    """Feature rows, labels and group sizes (one group per user history)."""

    matrix: npt.NDArray[np.float32]
    labels: npt.NDArray[np.float32]
    groups: list[int]
    users: list[int]
    """The user row of each group."""


def histories(data: TrainingSet, user: int, cold_sizes: Sequence[int]) -> list[History]:
    """The user's whole training history and, for each shorter ``n``, its first ``n`` and
    its latest ``n`` ratings (by time).

    Both cuts teach the ranker short histories, differently: the first ratings predict the
    held-out ones years later (the evaluation's cold-start protocol, where popularity pays),
    the latest ones predict what comes next (a new user's situation, where taste pays). Either
    alone lost one of the two on validation (docs/ranking.md).
    """
    full = data.history(user)
    out = [full]
    order = np.lexsort((full.rows, full.times))
    for n in sorted(set(cold_sizes)):
        if 0 < n < full.size:
            for keep in (order[:n], order[-n:]):
                out.append(History.build(full.rows[keep], full.ratings[keep], full.times[keep],
                                         data.now))  # fmt: skip
    return out


def examples(
    arms: Sequence[AnyArm],
    data: TrainingSet,
    probe: Probe,
    cold_sizes: Sequence[int],
    *,
    negatives: int | None = None,
    sizes_per_user: int | None = None,
    seed: int = 0,
) -> Examples:
    """The ranker's training rows for every ``probe`` user (groups without a liked candidate
    teach LambdaRank nothing and are left out). With ``negatives``, each group keeps its
    liked candidates and a seeded sample of that many others: features are computed over the
    whole candidate list first, so they are what serving computes. With ``sizes_per_user``,
    each user is cut to a seeded sample of that many of ``cold_sizes`` (every size is still
    seen, across users)."""
    rng = np.random.default_rng(seed)
    catalog = data.catalog
    blocks, labels, groups, users = [], [], [], []
    sizes = sorted(set(cold_sizes))
    for user, relevant in zip(probe.users.tolist(), probe.relevant, strict=True):
        own = sizes
        if sizes_per_user is not None and sizes_per_user < len(sizes):
            own = sorted(rng.choice(sizes, sizes_per_user, replace=False).tolist())
        for history in histories(data, user, own):
            allowed = np.ones(catalog.size, dtype=bool)
            allowed[history.rows] = False
            scored = features.score_arms(arms, history)
            rows = features.candidates(scored, allowed)
            label = np.isin(rows, relevant).astype(np.float32)
            if not label.any():
                continue
            keep = None
            if negatives is not None and rows.size - int(label.sum()) > negatives:
                others = np.flatnonzero(label == 0)
                picked = rng.choice(others, negatives, replace=False)
                keep = np.sort(np.concatenate([np.flatnonzero(label), picked]))
                label = label[keep]
            table = features.matrix(scored, catalog.genres, catalog.years, rows, keep)
            blocks.append(table)
            labels.append(label)
            groups.append(int(label.size))
            users.append(user)
    if not blocks:
        width = len(features.feature_names(arms))
        return Examples(np.zeros((0, width), np.float32), np.zeros(0, np.float32), [], [])
    return Examples(np.vstack(blocks), np.concatenate(labels), groups, users)


def _subset(data: Examples, keep: npt.NDArray[np.bool_]) -> Examples:
    """The groups whose flag in ``keep`` is set."""
    starts = np.concatenate([[0], np.cumsum(data.groups)])
    rows = np.concatenate(
        [np.arange(starts[g], starts[g + 1]) for g in np.flatnonzero(keep)]
    ) if keep.any() else np.zeros(0, dtype=np.int64)  # fmt: skip
    return Examples(
        data.matrix[rows], data.labels[rows],
        [data.groups[g] for g in np.flatnonzero(keep)],
        [data.users[g] for g in np.flatnonzero(keep)],
    )  # fmt: skip


def params(config: RankerConfig, seed: int) -> dict[str, Any]:
    """LightGBM parameters of the ranking stage."""
    return {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [10],
        "lambdarank_truncation_level": 20,
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "max_depth": config.max_depth,
        "min_data_in_leaf": config.min_data_in_leaf,
        "feature_fraction": config.feature_fraction,
        "bagging_fraction": config.bagging_fraction,
        "bagging_freq": 1,
        "num_threads": config.num_threads,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }


@dataclass(frozen=True)
class TrainedRanker:
    """A LightGBM model as text and what the manifest records about its training."""

    model: str
    details: dict[str, Any]


def train_ranker(
    data: Examples, names: list[str], config: RankerConfig, seed: int
) -> TrainedRanker:
    """Early stopping on a seeded share of the users, then a refit on all of them."""
    import lightgbm

    rng = np.random.default_rng(seed)
    distinct = np.unique(data.users)
    stop_users = rng.choice(distinct, max(1, round(distinct.size * config.early_stopping_share)),
                            replace=False)  # fmt: skip
    stopping = np.isin(data.users, stop_users)
    fit, check = _subset(data, ~stopping), _subset(data, stopping)
    settings = params(config, seed)

    def dataset(part: Examples, reference: Any = None) -> Any:
        return lightgbm.Dataset(
            part.matrix, part.labels, group=part.groups, feature_name=names,
            reference=reference, free_raw_data=False,
        )  # fmt: skip

    train_set = dataset(fit)
    scores: dict[str, Any] = {}
    booster = lightgbm.train(
        settings, train_set, num_boost_round=config.max_rounds,
        valid_sets=[dataset(check, train_set)], valid_names=["stop"],
        callbacks=[lightgbm.early_stopping(config.early_stopping_rounds, verbose=False),
                   lightgbm.record_evaluation(scores)],
    )  # fmt: skip
    rounds = max(1, int(booster.best_iteration or config.max_rounds))
    stop_ndcg = float(scores["stop"]["ndcg@10"][rounds - 1])
    final = lightgbm.train(settings, dataset(data), num_boost_round=rounds)
    gain = final.feature_importance(importance_type="gain")
    importance = sorted(zip(names, gain.tolist(), strict=True), key=lambda p: -p[1])
    total = float(gain.sum()) or 1.0
    return TrainedRanker(
        model=final.model_to_string(),
        details={
            "rounds": rounds,
            "early_stopping_ndcg_at_10": round(stop_ndcg, 5),
            "users": int(distinct.size),
            "groups": len(data.groups),
            "rows": int(data.labels.size),
            "positives": int(data.labels.sum()),
            "params": {k: v for k, v in settings.items() if k != "verbose"},
            "gain_share": {name: round(g / total, 4) for name, g in importance if g > 0},
        },
    )
