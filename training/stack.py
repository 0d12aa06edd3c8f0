"""Fitting every registered arm and the ranking stage on one training set.

The pipeline (``recsys-gql train``) and the evaluation (``recsys-gql evaluate``, on the part of
the data before its test split) run this same code, so what is evaluated is what is served:

1. hold out each user's latest ratings (:func:`~training.holdout.split_latest`);
2. on the rest, fit each arm, tuning the arms that have settings to tune
   (:meth:`~recsys_gql.recsys.arm.Arm.tune`) against the held-out likes;
3. train the ranking stage on those arms' candidates for the same users (:mod:`training.ranker`);
4. fit each arm again on all the data, with the settings chosen in step 2.

An arm that cannot be fitted (its :meth:`~recsys_gql.recsys.arm.Arm.skip_reason`, e.g. EASE^R
over its memory budget) is skipped in both fits, with the reason kept for the manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from recsys_gql.artifacts import ArmRecord, RankerRecord
from recsys_gql.recsys import features
from recsys_gql.recsys.arm import AnyArm, Probe, TrainingSet
from recsys_gql.recsys.arms import ARMS
from recsys_gql.recsys.ranker import MODEL_FILE
from training.config import TrainConfig
from training.holdout import split_latest
from training.ranker import TrainedRanker, examples, train_ranker

Stage = Callable[[str], AbstractContextManager[dict[str, str]]]


def _no_stage(name: str) -> AbstractContextManager[dict[str, str]]:
    return nullcontext({})


@dataclass
class Stack:
    """Fitted arms (registry order), their manifest sections, and the ranking stage."""

    arms: list[AnyArm]
    records: dict[str, ArmRecord]
    ranker: TrainedRanker | None
    ranker_record: RankerRecord
    tuning: dict[str, Any] = field(default_factory=dict)


def fit_arms(
    data: TrainingSet, config: TrainConfig, probe: Probe | None, skipped: dict[str, str]
) -> tuple[list[AnyArm], dict[str, Any]]:
    """Every arm not in ``skipped`` fitted on ``data`` (tuned against ``probe`` when given)."""
    arms: list[AnyArm] = []
    tuning: dict[str, Any] = {}
    for kind in ARMS:
        if kind.name in skipped:
            continue
        arm_config = config.arm(kind)
        if probe is not None and probe.users.size:
            arm, trials = kind.tune(data, probe, arm_config)
            if trials is not None:
                tuning[kind.name] = trials
        else:
            arm = kind.fit(data, arm_config)
        arms.append(arm)
    return arms, tuning


def fit_stack(data: TrainingSet, config: TrainConfig, *, stage: Stage = _no_stage) -> Stack:
    """Steps 1-4 of the module docstring."""
    skipped: dict[str, str] = {}
    for kind in ARMS:
        why = kind.skip_reason(data, config.arm(kind))
        if why is not None:
            skipped[kind.name] = why
    ranker_config = config.ranker
    with stage("validation") as info:
        held = split_latest(data, ranker_config.holdout)
        probe = held.probe(
            ranker_config.relevant_threshold, max_users=ranker_config.max_users, seed=config.seed
        )
        inner, tuning = fit_arms(held.train, config, probe, skipped)
        info["detail"] = f"{probe.users.size:,} users with held-out likes"
    trained: TrainedRanker | None = None
    reason: str | None = None
    names = features.feature_names(inner)
    with stage("ranker") as info:
        if not ranker_config.enabled:
            reason = "disabled in the config (ranker.enabled = false)"
        elif probe.users.size < ranker_config.min_users:
            reason = (
                f"only {probe.users.size} users have held-out likes, fewer than "
                f"ranker.min_users = {ranker_config.min_users}"
            )
        else:
            rows = examples(
                inner, held.train, probe, ranker_config.cold_start_sizes,
                negatives=ranker_config.negatives,
                sizes_per_user=ranker_config.sizes_per_user, seed=config.seed,
            )  # fmt: skip
            trained = train_ranker(rows, names, ranker_config, config.seed)
            info["detail"] = (
                f"{trained.details['rounds']} trees, {trained.details['rows']:,} rows, "
                f"early-stopping NDCG@10 {trained.details['early_stopping_ndcg_at_10']:.4f}"
            )
        if reason is not None:
            info["detail"] = f"skipped: {reason}"
    tuned = config
    for arm in inner:
        tuned = tuned.with_arm(arm.config, arm.name)
    arms: list[AnyArm] = []
    for kind in ARMS:
        if kind.name in skipped:
            continue
        with stage(kind.name):
            arms.append(kind.fit(data, tuned.arm(kind)))
    records = {
        kind.name: ArmRecord(
            status="skipped",
            reason=skipped[kind.name],
            config=config.arm(kind).model_dump(mode="json"),
        )
        for kind in ARMS
        if kind.name in skipped
    }
    ranker_record = (
        RankerRecord(
            status="trained",
            file=MODEL_FILE,
            features=names,
            feature_arms=features.feature_arms(inner),
            details={
                **trained.details,
                "genre_guard": {
                    "weight": ranker_config.genre_weight,
                    "ramp": ranker_config.genre_ramp,
                },
            },
        )
        if trained is not None
        else RankerRecord(status="skipped", reason=reason)
    )
    return Stack(arms, records, trained, ranker_record, tuning)
