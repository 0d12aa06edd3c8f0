"""Diversity: maximal marginal relevance (MMR) re-ranking and intra-list diversity (ILD),
both over the movies' unit-length content embeddings (cosine similarity = dot product).

MMR (Carbonell & Goldstein, 1998) builds the list one pick at a time, each time taking the
candidate with the best ``(1 − d)·relevance − d·max similarity to what is already picked``:
``d = 0`` keeps the relevance order, ``d = 1`` ignores relevance after the first pick.
Relevance is min-max scaled over the pool first, so it is on the same 0-1 footing as the
similarities whatever the scorer (ranker, blend or popularity) produced.

ILD is the mean pairwise cosine *distance* (``1 − cos``) of a list, the usual "how different
are the items shown together" measure; evaluation reports it beside NDCG@10.

Pure numpy, no engine state: the engine hands in relevance scores and embedding rows.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_DIVERSITY", "check_diversity", "intra_list_diversity", "mmr", "pool_size"]

DEFAULT_DIVERSITY = 0.5
"""``recommendations``' diversity when a request names none: chosen from the NDCG@10-vs-ILD
curve of the evaluation report (reports/; see its "Diversity" section for why)."""
POOL_FACTOR = 5
POOL_MIN = 50
POOL_MAX = 500
"""Candidates MMR chooses from: ``POOL_FACTOR × n``, at least ``POOL_MIN``, at most
``POOL_MAX`` (more candidates would let high diversity reach far down the relevance order)."""


def check_diversity(value: object) -> float:
    """``value`` as a float in [0, 1]; raises ``ValueError`` otherwise (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise ValueError(f"diversity must be a number from 0 to 1, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise ValueError(f"diversity must be a finite number from 0 to 1, got {value}")
    return number


def pool_size(n: int, diversity: float) -> int:
    """How many candidates to score for a list of ``n`` at this diversity (``n`` at 0)."""
    if diversity <= 0.0:
        return n
    return max(n, min(POOL_MAX, max(POOL_MIN, POOL_FACTOR * n)))


def mmr(
    relevance: npt.ArrayLike,
    embeddings: npt.NDArray[np.floating],
    n: int,
    diversity: float,
) -> npt.NDArray[np.intp]:
    """Positions (into ``relevance`` / ``embeddings`` rows) of the ``n`` MMR picks, in pick
    order. ``relevance`` is any score where higher is better; ``embeddings`` are unit rows of
    the same candidates. Ties keep the earlier position, so ``diversity = 0`` returns the
    stable relevance order."""
    rel = np.asarray(relevance, dtype=np.float64)
    size = rel.shape[0]
    if embeddings.shape[0] != size:
        raise ValueError(f"{size} relevance scores but {embeddings.shape[0]} embeddings")
    n = min(n, size)
    if n <= 0:
        return np.empty(0, dtype=np.intp)
    d = check_diversity(diversity)
    low, high = (float(rel.min()), float(rel.max())) if size else (0.0, 0.0)
    rel = (rel - low) / (high - low) if high > low else np.ones(size)
    if d == 0.0:
        return np.argsort(-rel, kind="stable")[:n].astype(np.intp)
    vectors = np.asarray(embeddings, dtype=np.float32)
    # Every pair's similarity at once: one small product instead of one per pick, so the
    # loop below is a handful of operations on ``size`` numbers per pick.
    similarity = (vectors @ vectors.T).astype(np.float64)
    relevance = (1.0 - d) * rel
    picks = np.empty(n, dtype=np.intp)
    picks[0] = int(np.argmax(relevance))  # nothing picked yet: no penalty
    closest = similarity[picks[0]].copy()  # max similarity to the picks so far
    for k in range(1, n):
        value = relevance - d * closest
        value[picks[:k]] = -np.inf
        picks[k] = int(np.argmax(value))  # first of equals: the stable order
        np.maximum(closest, similarity[picks[k]], out=closest)
    return picks


def intra_list_diversity(embeddings: npt.NDArray[np.floating]) -> float:
    """Mean pairwise cosine distance ``1 − cos`` of a list's unit embeddings (0 for fewer than
    two items)."""
    size = embeddings.shape[0]
    if size < 2:
        return 0.0
    vectors = np.asarray(embeddings, dtype=np.float64)
    sims = vectors @ vectors.T
    pairs = (sims.sum() - np.trace(sims)) / (size * (size - 1))
    return float(1.0 - pairs)
