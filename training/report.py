"""The evaluation report: ``evaluation.md``, ``evaluation.json``, ``ndcg_by_activity.png`` and
``diversity_curve.png`` from the figures of :func:`training.experiment.run_evaluation`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from recsys_gql.artifacts import atomic_write_text
from recsys_gql.recsys.diversity import POOL_MIN as POOL

LABELS = {
    "popularity": "Popularity (Bayesian average)",
    "arm_popularity": "Popularity arm (counts before the user's time)",
    "arm_content": "Content arm (embedding neighbours)",
    "content_prior": "Content + popularity prior (α = 0)",
    "tfidf_content": "TF-IDF content",
    "arm_als": "ALS arm",
    "arm_ease": "EASE^R arm (recency-weighted)",
    "ease_r": "EASE^R (λ tuned, as published)",
    "blend_fixed": "Linear blend, fixed α",
    "blend": "Linear blend, ramped α (the v1 default)",
    "default": "**Ranking stage (default)**",
}
COLUMNS = (
    ("ndcg_at_10", "NDCG@10"), ("precision_at_10", "P@10"), ("recall_at_20", "Recall@20"),
    ("map_at_10", "MAP@10"), ("coverage_at_10", "Coverage@10"),
    ("mean_popularity_at_10", "Mean pop.@10"),
)  # fmt: skip
PLOTTED = ("default", "ease_r", "blend", "arm_ease", "arm_als", "arm_content", "popularity")


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


def headline(results: dict[str, Any]) -> str:
    """The served default against EASE^R with 95% bootstrap intervals over users."""
    intervals = results.get("intervals") or {}
    if not intervals:
        return "EASE^R was skipped at this catalog size: no headline comparison."
    lines = [
        "| model | NDCG@10 [95% CI] | × EASE^R [95% CI] | Recall@20 [95% CI] | × EASE^R [95% CI] |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("default", "ease_r", "blend", "arm_ease", "arm_als"):
        if name not in intervals:
            continue
        cells = []
        for metric in ("ndcg_at_10", "recall_at_20"):
            v = intervals[name][metric]
            low, high = v["ci95"]
            r_low, r_high = v["ratio_ci95"]
            cells.append(f"{v['mean']:.4f} [{low:.4f}, {high:.4f}]")
            cells.append(f"{v['ratio']:.3f} [{r_low:.3f}, {r_high:.3f}]")
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def activity_table(results: dict[str, Any]) -> str:
    """Mean NDCG@10 by the users' number of training ratings."""
    activity = results["by_activity"]
    models = [m for m in PLOTTED if m in activity["ndcg_at_10"]]
    lines = [
        "| ratings | users | " + " | ".join(LABELS[m].replace("*", "") for m in models) + " |",
        "|---|---:|" + "---:|" * len(models),
    ]
    for k, (label, count) in enumerate(zip(activity["bins"], activity["users"], strict=True)):
        cells = []
        for m in models:
            value = activity["ndcg_at_10"][m][k]
            cells.append("—" if value is None else f"{value:.4f}")
        lines.append(f"| {label} | {count} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cold_table(results: dict[str, Any]) -> str:
    """NDCG@10 of the users cut to their first n ratings."""
    columns = [("default", "default"), ("fixed_alpha", "fixed α"), ("ramped", "ramped α"),
               ("als_only", "ALS only"), ("ease_only", "EASE^R arm"),
               ("content_only", "content only")]  # fmt: skip
    lines = [
        "| n ratings | " + " | ".join(label for _, label in columns) + " |",
        "|---:|" + "---:|" * len(columns),
    ]
    for row in results["cold_start"]:
        cells = [f"{row[key]:.4f}" if key in row else "—" for key, _ in columns]
        lines.append(f"| {int(row['ratings'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chosen_text(results: dict[str, Any]) -> str:
    """What was chosen on validation, in prose."""
    chosen = results["chosen"]
    arms = chosen["arms"]
    parts = [
        f"linear blend α = {chosen['alpha']}, ramp k = {chosen['ramp']}, content prior weight "
        f"{chosen['popularity_weight']}",
        f"EASE^R baseline λ = {chosen['ease_lambda']}",
    ]
    if "ease" in arms:
        ease = arms["ease"]
        parts.append(
            f"EASE^R arm λ = {ease['regularization'][0]}, recency half-life "
            f"{ease['half_life'][0]} ratings, floor {ease['floor'][0]} (chosen by `train` on its "
            "own validation split)"
        )
    if "popularity" in arms:
        window = arms["popularity"]["window_days"][0]
        parts.append(f"popularity window {window:g} days" if window else "all-time popularity")
    ranker = chosen.get("ranker") or {}
    if ranker:
        parts.append(
            f"ranking stage: {ranker['rounds']} trees on {ranker['rows']:,} rows from "
            f"{ranker['users']} users"
        )
    return "; ".join(parts) + "."


def write_report(results: dict[str, Any], out_dir: Path) -> None:
    """Write evaluation.md, evaluation.json and ndcg_by_activity.png into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "evaluation.json", json.dumps(results, indent=2))
    protocol = results["protocol"]
    validation = results.get("validation", {})
    val_line = ""
    if "ranker" in validation and "ease_r" in validation:
        ours, theirs = validation["ranker"]["ndcg_at_10"], validation["ease_r"]["ndcg_at_10"]
        val_line = (
            f"\nOn validation the served default had NDCG@10 {ours:.4f} against EASE^R's "
            f"{theirs:.4f} ({ours / theirs:.3f}×).\n"
        )
    text = f"""# Offline evaluation

Run `{results["run_id"]}`, {results["created_at"][:10]}; produced by `recsys-gql evaluate`
in {results["seconds"]} s.

**Protocol.** Each user's latest {protocol["holdout"]:.0%} of ratings (by timestamp) are held
out; a held-out rating ≥ {protocol["relevant_threshold"]} is relevant; every model ranks the
whole catalog ({protocol["catalog"]:,} movies) minus the user's training movies.
{protocol["test_users"]} users have at least one relevant held-out movie. All tuning used a
validation split carved the same way from the training part ({protocol["validation_users"]}
users); the test part was used once. Movie texts hold only the tags written before their
author's cut-off, so no tag from a held-out period reaches the content arm.

**Chosen on validation.** {chosen_text(results)}
{val_line}
{markdown_table(results)}

**The served default against EASE^R**, 95% bootstrap intervals over users
({(results.get("intervals") or {}).get("resamples", 0)} resamples, paired):

{headline(results)}

## NDCG@10 by the users' number of ratings

{activity_table(results)}

![NDCG@10 by number of ratings](ndcg_by_activity.png)

## Cold start: users cut to their first n ratings

NDCG@10 on the same test items when each user keeps only their first n training ratings.
"default" is what the engine serves (the ranking stage; with no ratings, the most rated
movies); "fixed α" and "ramped α" are the linear blend; at 0 ratings the engine used to answer
every one of them with the Bayesian-average list, shown in their columns.

{cold_table(results)}
{list_controls_text(results)}"""
    atomic_write_text(out_dir / "evaluation.md", text)
    plot_by_activity(results, out_dir / "ndcg_by_activity.png")
    if (results.get("list_controls") or {}).get("diversity_validation"):
        plot_diversity(results, out_dir / "diversity_curve.png")


def plot_by_activity(results: dict[str, Any], path: Path) -> None:
    """NDCG@10 of each model over users grouped by their number of ratings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    activity = results["by_activity"]
    bins = activity["bins"]
    x = np.arange(len(bins))
    fig, ax = plt.subplots(figsize=(7.5, 4.4), dpi=120)
    for name in PLOTTED:
        values = activity["ndcg_at_10"].get(name)
        if values is None:
            continue
        y = [np.nan if v is None else v for v in values]
        width = 2.4 if name == "default" else 1.2
        ax.plot(x, y, marker="o", linewidth=width, label=LABELS[name].replace("*", ""))
    ax.set_xticks(x, [f"{b}\n({n} users)" for b, n in zip(bins, activity["users"], strict=True)])
    ax.set_xlabel("training ratings per user")
    ax.set_ylabel("NDCG@10 (test)")
    ax.set_title("NDCG@10 by number of ratings per user")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def list_controls_text(results: dict[str, Any]) -> str:
    """The diversity curve with its chosen default, and simulated hides (issue 21)."""
    studies = results.get("list_controls") or {}
    if not studies:
        return "\n(No ranking stage in this run: no diversity or hide study.)\n"
    chosen = studies["diversity_default"]
    test = {row["diversity"]: row for row in studies.get("diversity_test", [])}
    lines = [
        "| diversity | NDCG@10 (validation) | ILD@10 (validation) | NDCG@10 (test) "
        "| ILD@10 (test) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in studies["diversity_validation"]:
        other = test.get(row["diversity"])
        tail = f"{other['ndcg_at_10']:.4f} | {other['ild_at_10']:.4f}" if other else "— | —"
        mark = " **(default)**" if row["diversity"] == chosen["diversity"] else ""
        lines.append(
            f"| {row['diversity']:.1f}{mark} | {row['ndcg_at_10']:.4f} | "
            f"{row['ild_at_10']:.4f} | {tail} |"
        )
    loss = 1 - chosen["ndcg_at_10"] / chosen["ndcg_at_10_at_0"] if chosen["ndcg_at_10_at_0"] else 0
    gain = chosen["ild_at_10"] - chosen["ild_at_10_at_0"]
    base = chosen["ndcg_at_10_at_0"]
    further = [r for r in studies["diversity_validation"] if r["diversity"] > chosen["diversity"]]
    beyond = (
        f" One step further (d = {further[0]['diversity']:g}) validation NDCG@10 is already "
        f"{1 - further[0]['ndcg_at_10'] / base:.1%} below d = 0."
        if further and base
        else ""
    )
    hides = studies["hides"]
    filter_only = hides[0]
    best = max(hides, key=lambda row: row["ndcg_at_10"])
    hide_rows = "\n".join(
        f"| {row['beta']:g}{' (filter only)' if row['beta'] == 0 else ''} | "
        f"{row['ndcg_at_10']:.4f} | {row['ild_at_10']:.4f} |"
        for row in hides
    )
    hide_gain = (
        best["ndcg_at_10"] / filter_only["ndcg_at_10"] - 1 if filter_only["ndcg_at_10"] else 0.0
    )
    verdict = (
        f"The best β on validation is {best['beta']:g}: NDCG@10 {best['ndcg_at_10']:.4f} "
        f"against {filter_only['ndcg_at_10']:.4f} for filtering alone ({hide_gain:+.1%}). "
        if best["beta"] > 0
        else "No β > 0 beats filtering alone. "
    ) + (
        "The engine uses hides as filters only (a hidden movie is never shown; nothing else "
        "changes): a gain this size, measured once on validation without an interval or a "
        "check on the test split, is not enough to change every hider's ranking."
    )
    return f"""
## Diversity: NDCG@10 against intra-list diversity

`recommendations(diversity: d)` re-ranks the ranking stage's best {POOL} candidates by maximal
marginal relevance over the movie embeddings: each pick maximises
`(1 − d)·relevance − d·(largest cosine similarity to the movies already picked)`. ILD@10 is the
mean pairwise cosine distance of the ten movies' embeddings (0: identical, 1: unrelated).
Curve on the validation split (what chose the default) and on the test split.

{chr(10).join(lines)}

![NDCG@10 against diversity](diversity_curve.png)

**The default, d = {chosen["diversity"]:g}** (`DEFAULT_DIVERSITY` in
`recsys_gql/recsys/diversity.py`, what `recommendations` uses when a request names none).
The rule: the highest diversity up to which validation NDCG@10 stays within
{chosen["max_ndcg_loss"]:.0%} of pure relevance (d = 0) at every step. At d =
{chosen["diversity"]:g} validation NDCG@10 is {chosen["ndcg_at_10"]:.4f} against
{chosen["ndcg_at_10_at_0"]:.4f} ({loss:.1%} lower) while ILD@10 goes from
{chosen["ild_at_10_at_0"]:.4f} to {chosen["ild_at_10"]:.4f} ({gain:+.4f}).{beyond}
A product owner who values variety more can move along the table; a client can ask for any
d per request.

## Hidden movies as negative evidence

Hides were simulated on the validation split: each user's training ratings ≤ 2 were taken
out of their history and treated as hidden ({int(filter_only["users_with_hides"])} of
{int(filter_only["users"])} users hid at least one). β = 0 uses them as a filter only; β > 0
also lowers each candidate's (min-max scaled) relevance by β × its largest cosine similarity
to a hidden movie.

| β | NDCG@10 | ILD@10 |
|---:|---:|---:|
{hide_rows}

{verdict}
"""


def plot_diversity(results: dict[str, Any], path: Path) -> None:
    """NDCG@10 against ILD@10 as diversity goes 0 to 1 (validation and test)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    studies = results["list_controls"]
    chosen = studies["diversity_default"]["diversity"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120)
    for name, style in (("diversity_validation", "-o"), ("diversity_test", "--s")):
        rows = studies.get(name)
        if not rows:
            continue
        label = name.split("_")[1]
        d = [r["diversity"] for r in rows]
        left.plot(d, [r["ndcg_at_10"] for r in rows], style, label=f"NDCG@10 ({label})")
        right.plot(
            [r["ild_at_10"] for r in rows], [r["ndcg_at_10"] for r in rows], style, label=label
        )
        for r in rows:
            if r["diversity"] == chosen:
                right.annotate(f"default d={chosen:g}", (r["ild_at_10"], r["ndcg_at_10"]))
    left.axvline(chosen, color="grey", linewidth=0.8)
    left.set_xlabel("diversity d")
    left.set_ylabel("NDCG@10")
    left.set_title("Relevance as diversity rises")
    left.legend(fontsize=7)
    right.set_xlabel("ILD@10 (mean pairwise cosine distance)")
    right.set_ylabel("NDCG@10")
    right.set_title("NDCG@10 against intra-list diversity")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
