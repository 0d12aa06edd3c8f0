"""Two studies of the list controls of issue 21, run by ``recsys-gql evaluate``:

1. **Diversity curve.** For each evaluated user the served default (the ranking stage) scores
   a pool of candidates once; maximal marginal relevance (:func:`recsys_gql.recsys.diversity.
   mmr`, the engine's own code) then picks ten at each diversity 0, 0.1, …, 1. For each level:
   mean NDCG@10 and mean intra-list diversity (ILD, mean pairwise cosine distance of the
   content embeddings). The default diversity is chosen on the *validation* split
   (:func:`choose_default`); the test curve is reported beside it.
2. **Hides as negative evidence.** Hides are simulated in the validation split: each user's
   training ratings ≤ :data:`HIDE_AT_MOST` are taken out of their history and treated as
   hidden movies. Filter only (the hidden movies are never recommended, nothing else) is
   compared with using them as negative evidence: a candidate's relevance is lowered by
   ``β × its largest cosine similarity to a hidden movie`` before the top ten are taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from recsys_gql.recsys import features
from recsys_gql.recsys.arm import AnyArm, History
from recsys_gql.recsys.diversity import intra_list_diversity, mmr, pool_size
from recsys_gql.recsys.ranker import Ranker, rank
from training.evaluate import SplitData
from training.metrics import per_user_metrics

LEVELS = tuple(round(0.1 * k, 1) for k in range(11))
TOP = 10
POOL = pool_size(TOP, 1.0)
"""Candidates per user that MMR chooses from: the engine's pool for a list of ten."""
MAX_NDCG_LOSS = 0.02
"""The default diversity is the highest level up to which validation NDCG@10 stays at most this
share below diversity 0's (a product choice: up to 2% relevance for variety)."""
HIDE_AT_MOST = 2.0
BETAS = (0.0, 0.1, 0.25, 0.5, 1.0)


def _pools(
    split: SplitData, arms: Sequence[AnyArm], ranker: Ranker, users: Sequence[History]
) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """Each user's ranked pool: candidate rows and the ranking stage's scores, best first."""
    catalog = split.data.catalog
    pools = []
    for k, user in enumerate(users):
        allowed = ~split.exclude[k]
        result = rank(ranker, features.score_arms(arms, user), catalog.genres, catalog.years,
                      allowed, POOL)  # fmt: skip
        pools.append((result.rows.astype(np.int64), np.asarray(result.score, dtype=np.float64)))
    return pools


def _lists_metrics(
    split: SplitData, lists: list[npt.NDArray[np.int64]], embeddings: npt.NDArray[np.float32]
) -> dict[str, float]:
    tops = np.zeros((len(lists), 20), dtype=np.int64)
    for k, rows in enumerate(lists):
        padded = np.concatenate([rows, np.full(20 - rows.size, rows[-1] if rows.size else 0)])
        tops[k] = padded[:20]
    ndcg = per_user_metrics(tops, split.relevant)["ndcg_at_10"]
    ild = [intra_list_diversity(embeddings[rows]) for rows in lists]
    return {"ndcg_at_10": float(ndcg.mean()), "ild_at_10": float(np.mean(ild))}


def diversity_curve(
    split: SplitData,
    arms: Sequence[AnyArm],
    ranker: Ranker,
    users: Sequence[History],
    embeddings: npt.NDArray[np.float32],
) -> list[dict[str, float]]:
    """NDCG@10 and ILD@10 of the served default re-ranked by MMR at each of :data:`LEVELS`."""
    pools = _pools(split, arms, ranker, users)
    curve = []
    for level in LEVELS:
        lists = [
            rows[mmr(scores, embeddings[rows], TOP, level)] if rows.size else rows
            for rows, scores in pools
        ]
        curve.append({"diversity": level, **_lists_metrics(split, lists, embeddings)})
    return curve


def choose_default(curve: Sequence[dict[str, float]]) -> dict[str, Any]:
    """The highest diversity up to which every level stays within :data:`MAX_NDCG_LOSS` of
    diversity 0's NDCG@10 (a level past a dip is not trusted), with the figures behind it."""
    base = curve[0]["ndcg_at_10"]
    floor = base * (1.0 - MAX_NDCG_LOSS)
    best = curve[0]
    for row in curve[1:]:
        if row["ndcg_at_10"] < floor:
            break
        best = row
    return {
        "diversity": best["diversity"],
        "max_ndcg_loss": MAX_NDCG_LOSS,
        "ndcg_at_10": best["ndcg_at_10"],
        "ild_at_10": best["ild_at_10"],
        "ndcg_at_10_at_0": base,
        "ild_at_10_at_0": curve[0]["ild_at_10"],
    }


def hides_as_evidence(
    split: SplitData,
    arms: Sequence[AnyArm],
    ranker: Ranker,
    users: Sequence[History],
    embeddings: npt.NDArray[np.float32],
) -> list[dict[str, float]]:
    """NDCG@10 with simulated hides (ratings ≤ :data:`HIDE_AT_MOST` taken out of the history
    and hidden) as a filter only (β = 0) and as negative evidence (β > 0)."""
    catalog = split.data.catalog
    pools: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]]
    pools = []
    hiders = 0
    for k, user in enumerate(users):
        low = user.ratings <= HIDE_AT_MOST
        hidden = user.rows[low].astype(np.int64)
        hiders += int(hidden.size > 0)
        kept = History.build(user.rows[~low], user.ratings[~low], user.times[~low], split.data.now)
        allowed = ~split.exclude[k]  # every training movie, hidden ones included, stays out
        if kept.size == 0:
            pools.append((np.empty(0, np.int64), np.empty(0), hidden))
            continue
        result = rank(ranker, features.score_arms(arms, kept), catalog.genres, catalog.years,
                      allowed, POOL)  # fmt: skip
        pools.append((result.rows.astype(np.int64), np.asarray(result.score, np.float64), hidden))
    rows_out = []
    for beta in BETAS:
        lists = []
        for rows, scores, hidden in pools:
            value = scores.copy()
            if beta > 0 and hidden.size and rows.size:
                if value.max() > value.min():
                    value = (value - value.min()) / (value.max() - value.min())
                closest = (embeddings[rows] @ embeddings[hidden].T).max(axis=1)
                value = value - beta * closest
            lists.append(rows[np.argsort(-value, kind="stable")[:TOP]])
        keep = [k for k, rows in enumerate(lists) if rows.size]
        sub = _subset(split, keep)
        figures = _lists_metrics(sub, [lists[k] for k in keep], embeddings)
        rows_out.append({"beta": beta, **figures, "users": float(len(keep)),
                         "users_with_hides": float(hiders)})  # fmt: skip
    return rows_out


def _subset(split: SplitData, keep: list[int]) -> SplitData:
    import dataclasses

    index = np.asarray(keep, dtype=np.int64)
    return dataclasses.replace(
        split,
        eval_rows=split.eval_rows[index],
        relevant=split.relevant[index],
        exclude=split.exclude[index],
    )
