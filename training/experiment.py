"""``recsys-gql evaluate``: run the protocol of :mod:`training.evaluate` on one data set and
return every figure; :mod:`training.report` writes them up.

1. Split: each user's latest ratings are the test part; the same cut of the rest is the
   validation part. Each part gets its own content graph, from movie texts whose tags were
   written before their author's cut-off.
2. Validation: fit everything ``recsys-gql train`` fits (:func:`~training.stack.fit_stack`) on
   the part before validation; tune the linear blend (α, ramp, prior weight) and EASE^R's λ;
   report the ranking stage against EASE^R there too.
3. Test, once: fit again on the whole training part and score every model: each arm alone,
   the linear blend (fixed and ramped α), the ranking stage (the served default), EASE^R with
   the tuned λ, popularity and TF-IDF; bootstrap intervals over users; NDCG@10 by the users'
   number of ratings; the same users cut to their first n ratings (cold start).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from recsys_gql.artifacts import MANIFEST_NAME, atomic_write_text
from recsys_gql.movielens import MovieLensData, load_movielens
from recsys_gql.recsys import ann
from recsys_gql.recsys.arm import AnyArm, Catalog, History
from recsys_gql.recsys.arms.content import ContentArm
from recsys_gql.recsys.arms.popularity import PopularityArm
from recsys_gql.recsys.content import ContentGraph
from recsys_gql.recsys.ranker import Ranker
from recsys_gql.recsys.runs import open_run
from recsys_gql.recsys.vocab import IdVocab
from training.config import EvalConfig, TrainConfig
from training.diversity_study import (
    choose_default,
    diversity_curve,
    hides_as_evidence,
)
from training.embed import embed_texts
from training.evaluate import (
    Arms,
    NormalisedArms,
    SplitData,
    Tops,
    arm_matrix,
    bootstrap,
    by_activity,
    cold_start_top,
    ease_baseline,
    popularity_tops,
    ranked_tops,
    tfidf_tops,
    tune_blend,
    tune_ease,
)
from training.fit import fit_tfidf
from training.metrics import temporal_split
from training.pipeline import EncoderFactory, content_graph, default_encoder
from training.stack import Stack, fit_stack
from training.text import movie_texts, tags_until_cutoff

Report = Callable[[str], None]


def leak_free_catalog(
    data: MovieLensData,
    before: pd.DataFrame,
    base: Catalog,
    config: TrainConfig,
    embed: Callable[[list[str]], npt.NDArray[np.float32]],
) -> tuple[Catalog, list[str]]:
    """The catalog of a split: texts with only the tags written up to their author's last
    rating in ``before``, embedded, indexed and turned into the neighbour graph."""
    tags = tags_until_cutoff(data.tags, before)
    texts = movie_texts(dataclasses.replace(data, tags=tags), config.text.top_tags).tolist()
    embeddings = embed(texts)
    spec = config.index.spec(base.size)
    index = ann.build(embeddings, spec, seed=config.seed)
    graph = content_graph(
        index, spec, embeddings, config.index.content_neighbors, config.index.graph_probe
    )
    return dataclasses.replace(base, graph=graph), texts


def _ranker(stack: Stack) -> Ranker | None:
    record = stack.ranker_record
    if stack.ranker is None:
        return None
    return Ranker.from_record(stack.ranker.model, record)


def _arm(stack: Stack, kind: type[AnyArm]) -> AnyArm:
    return next(arm for arm in stack.arms if isinstance(arm, kind))


def _served(
    split: SplitData,
    stack: Stack,
    users: list[History],
    blend: NormalisedArms,
    alpha: float,
) -> Tops:
    """The engine's default: the ranking stage, else the ramped blend."""
    ranker = _ranker(stack)
    if ranker is None:
        return split.tops(blend.blend(alpha))
    return ranked_tops(split, stack.arms, ranker, users)


def run_evaluation(
    data_dir: Path,
    artifacts_dir: Path,
    train_config: TrainConfig,
    config: EvalConfig,
    *,
    cache_dir: Path | None,
    encoder_factory: EncoderFactory = default_encoder,
    report: Report = print,
) -> dict[str, Any]:
    """Tune on validation, compare every model on test, and return all figures."""
    started = time.perf_counter()
    artifacts = open_run(artifacts_dir)
    items = IdVocab(artifacts.array("movie_ids.npy"))
    base = Catalog(
        items,
        artifacts.array("movie_genres.npy"),
        artifacts.array("movie_years.npy"),
        ContentGraph(np.zeros((len(items), 1), np.int32), np.zeros((len(items), 1), np.float32)),
    )
    data = load_movielens(data_dir)
    encoder = encoder_factory(train_config)

    def embed(texts: list[str]) -> npt.NDArray[np.float32]:
        vectors, _ = embed_texts(texts, encoder, cache_dir, show_progress=False)
        return vectors

    train, test = temporal_split(data.ratings, config.holdout)
    fit_part, validation = temporal_split(train, config.holdout)
    max_users, seed, threshold = config.max_users, train_config.seed, config.relevant_threshold
    sizes = [n for n in config.cold_start_sizes if n > 0]

    # -- validation: tune the blend and EASE^R's λ; the ranker against EASE^R there --------
    val_catalog, val_texts = leak_free_catalog(data, fit_part, base, train_config, embed)
    val = SplitData.build(fit_part, validation, val_catalog, threshold, max_users=max_users,
                          seed=seed)  # fmt: skip
    report(f"validation: {val.eval_rows.size} users with relevant held-out movies")
    val_stack = fit_stack(val.data, train_config)
    val_users = val.histories()
    val_arms = Arms.of(val, val_stack.arms, val_users)
    val_cold = []
    for n in sizes:
        cut, users = val.cut(n)
        val_cold.append((cut, Arms.of(cut, val_stack.arms, users)))
    chosen, blend_trials = tune_blend((val, val_arms), val_cold, config)
    report(f"blend: alpha {chosen['alpha']}, ramp {chosen['ramp']}, "
           f"popularity weight {chosen['popularity_weight']}")  # fmt: skip
    alpha, ramp, weight = chosen["alpha"], chosen["ramp"], chosen["popularity_weight"]
    skipped: dict[str, str] = {}
    lam: float | None = None
    ease_trials: list[dict[str, float]] = []
    if len(items) <= config.ease_max_items:
        lam, ease_trials = tune_ease(val, config.ease_lambdas)
        report(f"EASE^R: lambda {lam}")
    else:
        skipped["ease_r"] = (
            f"catalog of {len(items):,} movies > ease_max_items {config.ease_max_items:,}: "
            "its dense items x items inverse does not fit"
        )
        report(f"EASE^R: skipped ({skipped['ease_r']})")
    val_blend = NormalisedArms.of(val_arms, val.exclude, weight, ramp)
    validation_tops = {"ranker": _served(val, val_stack, val_users, val_blend, alpha)}
    if lam is not None:
        validation_tops["ease_r"] = val.tops(ease_baseline(val, lam))
    validation_figures = {name: val.metrics(t).as_dict() for name, t in validation_tops.items()}
    studies = list_control_studies(val, val_stack, val_users, embed(val_texts), report)

    # -- test, once ---------------------------------------------------------------------------
    test_catalog, test_texts = leak_free_catalog(data, train, base, train_config, embed)
    split = SplitData.build(train, test, test_catalog, threshold, max_users=max_users, seed=seed)
    report(f"test: {split.eval_rows.size} users with relevant held-out movies")
    stack = fit_stack(split.data, train_config)
    users = split.histories()
    arms = Arms.of(split, stack.arms, users)
    n_items = test_catalog.size
    fixed = NormalisedArms.of(arms, split.exclude, weight, 0.0)
    ramped = NormalisedArms.of(arms, split.exclude, weight, ramp)
    content_shrink = _arm(stack, ContentArm).config.profile_shrink
    prior_count = _arm(stack, PopularityArm).config.prior_count
    tops: dict[str, Tops] = {
        "popularity": popularity_tops(split, prior_count),
        "tfidf_content": tfidf_tops(
            split, fit_tfidf(test_texts, train_config.tfidf), content_shrink
        ),
    }
    for arm in stack.arms:
        tops[f"arm_{arm.name}"] = split.tops(arm_matrix(arm, users, n_items))
    tops["content_prior"] = split.tops(fixed.blend(0.0))
    tops["blend_fixed"] = split.tops(fixed.blend(alpha))
    tops["blend"] = split.tops(ramped.blend(alpha))
    if lam is not None:
        tops["ease_r"] = split.tops(ease_baseline(split, lam))
    tops["default"] = _served(split, stack, users, ramped, alpha)
    per_user = {name: split.per_user(t) for name, t in tops.items()}
    headline = [m for m in ("default", "ease_r", "blend", "arm_ease", "arm_als") if m in tops]
    intervals = (
        bootstrap(
            per_user,
            headline,
            ["ndcg_at_10", "recall_at_20"],
            against="ease_r",
            resamples=config.bootstrap_resamples,
            seed=seed,
        )
        if "ease_r" in tops
        else {}
    )
    n_ratings = np.array([u.size for u in users], dtype=np.int64)
    cold = cold_start_study(split, stack, sizes, config.cold_start_sizes, alpha, ramp, weight,
                            prior_count)  # fmt: skip
    test_ranker = _ranker(stack)
    if test_ranker is not None and studies:
        studies["diversity_test"] = diversity_curve(
            split, stack.arms, test_ranker, users, embed(test_texts)
        )
    return {
        "created_at": datetime.now(UTC).isoformat(),
        "run_id": artifacts.manifest.run_id,
        "protocol": {
            "holdout": config.holdout,
            "relevant_threshold": threshold,
            "test_users": int(split.eval_rows.size),
            "validation_users": int(val.eval_rows.size),
            "catalog": len(items),
            "max_users": max_users,
            "tags": "written up to their author's cut-off only",
        },
        "chosen": {
            "alpha": alpha,
            "ramp": ramp,
            "popularity_weight": weight,
            "ease_lambda": lam,
            "arms": {arm.name: arm.config.model_dump(mode="json") for arm in stack.arms},
            "ranker": stack.ranker_record.details,
        },
        "test": {name: split.metrics(t).as_dict() for name, t in tops.items()},
        "intervals": intervals,
        "by_activity": by_activity(per_user, n_ratings),
        "validation": validation_figures,
        "cold_start": cold,
        "list_controls": studies,
        "skipped": skipped | {name: r.reason for name, r in stack.records.items() if r.reason},
        "tuning": {"blend": blend_trials, "ease_r": ease_trials, "arms": stack.tuning},
        "seconds": round(time.perf_counter() - started, 1),
    }


def list_control_studies(
    val: SplitData,
    stack: Stack,
    users: list[History],
    embeddings: npt.NDArray[np.float32],
    report: Report,
) -> dict[str, Any]:
    """On validation: the NDCG@10-vs-diversity curve and the default chosen from it, and
    simulated hides as a filter against hides as negative evidence
    (:mod:`training.diversity_study`); empty without a ranking stage."""
    ranker = _ranker(stack)
    if ranker is None:
        return {}
    curve = diversity_curve(val, stack.arms, ranker, users, embeddings)
    chosen = choose_default(curve)
    report(f"diversity: default {chosen['diversity']} (NDCG@10 {chosen['ndcg_at_10']:.4f}, "
           f"ILD@10 {chosen['ild_at_10']:.4f})")  # fmt: skip
    hides = hides_as_evidence(val, stack.arms, ranker, users, embeddings)
    return {"diversity_validation": curve, "diversity_default": chosen, "hides": hides}


def cold_start_study(
    split: SplitData,
    stack: Stack,
    sizes: list[int],
    all_sizes: list[int],
    alpha: float,
    ramp: float,
    weight: float,
    prior_count: float,
) -> list[dict[str, float]]:
    """NDCG@10 of the test users cut to their first n ratings: the served default against a
    fixed α, the ramped blend, and ALS, EASE^R and content alone. With no ratings the engine
    answers with the popularity arm's cold-start list (all-time counts); the blends and ALS
    fell back to the Bayesian-average list before the arms had one."""
    rows: list[dict[str, float]] = []
    if 0 in all_sizes:
        cut = dataclasses.replace(split, exclude=np.zeros_like(split.exclude))
        allowed = np.ones(split.data.catalog.size, dtype=bool)
        default = np.tile(cold_start_top(stack.arms, allowed), (cut.eval_rows.size, 1))
        before = cut.metrics(popularity_tops(cut, prior_count)).ndcg_at_10
        rows.append({
            "ratings": 0.0, "default": cut.metrics(default).ndcg_at_10,
            "fixed_alpha": before, "ramped": before, "als_only": before,
        })  # fmt: skip
    for n in sizes:
        cut, users = split.cut(n)
        arms = Arms.of(cut, stack.arms, users)
        fixed = NormalisedArms.of(arms, cut.exclude, weight, 0.0)
        ramped = NormalisedArms.of(arms, cut.exclude, weight, ramp)

        def ndcg(tops: Tops, cut: SplitData = cut) -> float:
            return cut.metrics(tops).ndcg_at_10

        row = {
            "ratings": float(n),
            "default": ndcg(_served(cut, stack, users, ramped, alpha)),
            "fixed_alpha": ndcg(cut.tops(fixed.blend(alpha))),
            "ramped": ndcg(cut.tops(ramped.blend(alpha))),
            "als_only": ndcg(cut.tops(fixed.blend(1.0))),
            "content_only": ndcg(cut.tops(fixed.blend(0.0))),
        }
        for arm in stack.arms:
            if arm.name == "ease":
                row["ease_only"] = ndcg(cut.tops(arm_matrix(arm, users, cut.exclude.shape[1])))
        rows.append(row)
    return rows


def record_in_manifest(artifacts_dir: Path, results: dict[str, Any]) -> None:
    """Store the blend's chosen α/ramp/prior weight and the test metrics in the run's
    manifest (the files it lists are unchanged, so the run still verifies)."""
    import json

    path = artifacts_dir.resolve() / MANIFEST_NAME
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["metrics"] = {
        "chosen": {k: results["chosen"][k] for k in ("alpha", "ramp", "popularity_weight")},
        "test": results["test"],
        "evaluated_at": results["created_at"],
    }
    atomic_write_text(path, json.dumps(manifest, indent=2))
