"""``recsys-gql evaluate``: run the protocol of :mod:`training.evaluate`, write the report
(markdown table, JSON of every figure, NDCG@10-vs-α plot) and record the chosen α, ramp and
test metrics in the artifacts' manifest."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from recsys_gql.artifacts import MANIFEST_NAME, ArtifactDir, atomic_write_text
from recsys_gql.movielens import load_movielens
from recsys_gql.recsys.content import ContentGraph
from recsys_gql.recsys.engine import HybridSettings
from recsys_gql.recsys.vocab import IdVocab
from training.config import EvalConfig, TrainConfig
from training.evaluate import (
    NormalisedArms,
    SplitData,
    cold_slices,
    cold_start_study,
    compute_arms,
    ease_scores,
    popularity_scores,
    tfidf_scores,
    tune_als,
    tune_blend,
    tune_ease,
)
from training.fit import fit_als
from training.metrics import temporal_split


def run_evaluation(
    data_dir: Path,
    artifacts_dir: Path,
    train_config: TrainConfig,
    config: EvalConfig,
    *,
    report: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Tune on validation, compare every model on test, and return all figures."""
    started = time.perf_counter()
    artifacts = ArtifactDir.open(artifacts_dir)
    items = IdVocab(artifacts.array("movie_ids.npy"))
    graph = ContentGraph(
        artifacts.array("content_neighbors.npy"), artifacts.array("content_similarities.npy")
    )
    tfidf = artifacts.sparse("tfidf.npz")
    data = load_movielens(data_dir)
    train, test = temporal_split(data.ratings, config.holdout)
    fit_part, validation = temporal_split(train, config.holdout)
    max_users, seed = config.max_users, train_config.seed
    val = SplitData.build(
        fit_part, validation, items, config.relevant_threshold, max_users=max_users, seed=seed
    )
    report(f"validation: {val.eval_rows.size} users with relevant held-out items")

    als, als_trials = tune_als(val, graph, config, train_config.als, train_config.seed)
    report(f"ALS: best {als.factors} factors, reg {als.regularization}, alpha {als.alpha}, "
           f"{als.weighting} weighting")  # fmt: skip
    shrink = train_config.hybrid.profile_shrink
    fitted = fit_als(val.train, als, show_progress=False)
    base = HybridSettings(profile_shrink=shrink)
    val_arms = compute_arms(val, fitted.item_factors, als, graph, base)
    val_cold = cold_slices(
        val, fit_part, fitted.item_factors, als, graph, base, config.cold_start_sizes
    )
    chosen, blend_trials = tune_blend((val, val_arms), val_cold, config)
    report(
        f"blend: alpha {chosen['alpha']}, ramp {chosen['ramp']}, "
        f"popularity weight {chosen['popularity_weight']}"
    )
    skipped: dict[str, str] = {}
    lam: float | None = None
    ease_trials: list[dict[str, float]] = []
    if len(items) <= config.ease_max_items:
        lam, ease_trials = tune_ease(val, config)
        report(f"EASE: lambda {lam}")
    else:
        skipped["ease_r"] = (
            f"catalog of {len(items):,} movies > ease_max_items {config.ease_max_items:,}: "
            "its dense items x items inverse does not fit"
        )
        report(f"EASE: skipped ({skipped['ease_r']})")

    settings = HybridSettings(
        alpha=float(chosen["alpha"]),
        ramp=float(chosen["ramp"]),
        popularity_weight=float(chosen["popularity_weight"]),
        profile_shrink=shrink,
    )
    split = SplitData.build(
        train, test, items, config.relevant_threshold, max_users=max_users, seed=seed
    )
    final = fit_als(split.train, als, show_progress=False)
    arms = compute_arms(split, final.item_factors, als, graph, settings)
    weight = settings.popularity_weight
    served = NormalisedArms.of(arms, split.exclude, weight, settings.ramp)
    models = {
        "popularity": split.score(popularity_scores(split, train_config.popularity)),
        "als_only": split.score(arms.collab),
        "content_only": split.score(arms.content),
        "content_prior": split.score(NormalisedArms.of(arms, split.exclude, weight, 0).blend(0)),
        "tfidf_content": split.score(tfidf_scores(split, tfidf, shrink)),
        "hybrid": split.score(served.blend(settings.alpha)),
    }
    if lam is not None:
        models["ease_r"] = split.score(ease_scores(split, lam))
    unramped = NormalisedArms.of(arms, split.exclude, weight, 0.0)
    alpha_curve = {
        f"{alpha:.1f}": split.score(unramped.blend(alpha)).as_dict() for alpha in config.alphas
    }
    test_cold = cold_slices(
        split, train, final.item_factors, als, graph, settings, config.cold_start_sizes
    )
    cold = cold_start_study(test_cold, config.cold_start_sizes, settings)
    return {
        "created_at": datetime.now(UTC).isoformat(),
        "run_id": artifacts.manifest.run_id,
        "protocol": {
            "holdout": config.holdout,
            "relevant_threshold": config.relevant_threshold,
            "test_users": int(split.eval_rows.size),
            "validation_users": int(val.eval_rows.size),
            "catalog": len(items),
            "max_users": config.max_users,
        },
        "chosen": {
            "alpha": settings.alpha,
            "ramp": settings.ramp,
            "popularity_weight": settings.popularity_weight,
            "als": als.model_dump(),
            "ease_lambda": lam,
        },
        "test": {name: m.as_dict() for name, m in models.items()},
        "alpha_curve": alpha_curve,
        "cold_start": cold,
        "skipped": skipped,
        "tuning": {"als": als_trials, "blend": blend_trials, "ease": ease_trials},
        "seconds": round(time.perf_counter() - started, 1),
    }


LABELS = {
    "popularity": "Popularity (Bayesian average)",
    "als_only": "ALS only (α = 1)",
    "content_only": "Content only (embedding neighbours)",
    "content_prior": "Content + popularity prior (α = 0)",
    "tfidf_content": "TF-IDF content",
    "ease_r": "EASE^R",
    "hybrid": "**Hybrid (default)**",
}
COLUMNS = (
    ("ndcg_at_10", "NDCG@10"), ("precision_at_10", "P@10"), ("recall_at_20", "Recall@20"),
    ("map_at_10", "MAP@10"), ("coverage_at_10", "Coverage@10"),
    ("mean_popularity_at_10", "Mean pop.@10"),
)  # fmt: skip


def markdown_table(results: dict[str, Any]) -> str:
    """The main comparison as a markdown table."""
    lines = [
        "| model | " + " | ".join(label for _, label in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for name, label in LABELS.items():
        if name not in results["test"]:
            continue  # skipped at this scale (see results["skipped"])
        m = results["test"][name]
        cells = [f"{m[key]:.1f}" if key == "mean_popularity_at_10" else f"{m[key]:.4f}"
                 for key, _ in COLUMNS]  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(results: dict[str, Any], out_dir: Path) -> None:
    """Write evaluation.md, evaluation.json and ndcg_vs_alpha.png into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "evaluation.json", json.dumps(results, indent=2))
    chosen, protocol = results["chosen"], results["protocol"]
    cold_rows = "\n".join(
        f"| {int(r['ratings'])} | {r['effective_alpha']:.2f} | {r['ramped']:.4f} | "
        f"{r['fixed_alpha']:.4f} | {r['content_only']:.4f} | {r['als_only']:.4f} |"
        for r in results["cold_start"]
    )
    als = chosen["als"]
    text = f"""# Offline evaluation

Run `{results["run_id"]}`, {results["created_at"][:10]}; produced by `recsys-gql evaluate`
in {results["seconds"]} s.

**Protocol.** Each user's latest {protocol["holdout"]:.0%} of ratings (by timestamp) are held
out; a held-out rating ≥ {protocol["relevant_threshold"]} is relevant; every model ranks the
whole catalog ({protocol["catalog"]:,} movies) minus the user's training movies.
{protocol["test_users"]} users have at least one relevant held-out movie. All tuning used a
validation split carved the same way from the training part ({protocol["validation_users"]}
users); the test part was used once.

**Chosen on validation.** α = {chosen["alpha"]}, ramp k = {chosen["ramp"]}
(α_n = α·n/(n+k)), content-arm popularity prior weight {chosen["popularity_weight"]};
ALS {als["factors"]} factors, regularization {als["regularization"]},
confidence alpha {als["alpha"]}, `{als["weighting"]}` weighting; EASE^R λ = {chosen["ease_lambda"]}.

{markdown_table(results)}

![NDCG@10 against α](ndcg_vs_alpha.png)

## Cold start: users cut to their first n ratings

NDCG@10 on the same test items when each user keeps only their first n training ratings.
"ramped" is the served default (α_n = α·n/(n+k)); "fixed α" uses α = {chosen["alpha"]}
whatever n is.

| n ratings | α_n | ramped | fixed α | content only | ALS only |
|---:|---:|---:|---:|---:|---:|
{cold_rows}

Caveat: movie texts include user tags from the whole data set, so tags written after a
user's cut-off inform the content arm (a small leak that favours the content models).
"""
    atomic_write_text(out_dir / "evaluation.md", text)
    plot_alpha_curve(results, out_dir / "ndcg_vs_alpha.png")


def plot_alpha_curve(results: dict[str, Any], path: Path) -> None:
    """NDCG@10 of the blend against α (no ramp), with the baselines as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = results["alpha_curve"]
    alphas = [float(a) for a in curve]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    ax.plot(alphas, [curve[a]["ndcg_at_10"] for a in curve], marker="o", label="hybrid (no ramp)")
    styles = {"popularity": ":", "als_only": "--", "content_only": "-.", "tfidf_content": ":",
              "ease_r": "-", "hybrid": "--"}  # fmt: skip
    colors = plt.cm.tab10(np.arange(1, 1 + len(styles)))
    for (name, style), color in zip(styles.items(), colors, strict=True):
        if name not in results["test"]:
            continue
        ax.axhline(results["test"][name]["ndcg_at_10"], linestyle=style, color=color,
                   label=LABELS[name].replace("*", ""))  # fmt: skip
    ax.set_xlabel("α (share of the collaborative arm)")
    ax.set_ylabel("NDCG@10 (test)")
    ax.set_title("Hybrid blend against baselines, ml-latest-small")
    ax.legend(fontsize=7, loc="lower center")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def record_in_manifest(artifacts_dir: Path, results: dict[str, Any]) -> None:
    """Store the chosen α/ramp and the test metrics in the run's manifest (the files it
    lists are unchanged, so the run still verifies)."""
    path = artifacts_dir.resolve() / MANIFEST_NAME
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["metrics"] = {
        "chosen": {k: results["chosen"][k] for k in ("alpha", "ramp", "popularity_weight")},
        "test": results["test"],
        "evaluated_at": results["created_at"],
    }
    atomic_write_text(path, json.dumps(manifest, indent=2))
