"""Known-answer tests of maximal marginal relevance and intra-list diversity on hand-made
embeddings (two tight clusters), where the right picks can be worked out on paper."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_gql.recsys.diversity import (
    POOL_MAX,
    check_diversity,
    intra_list_diversity,
    mmr,
    pool_size,
)


def unit(*rows: list[float]) -> np.ndarray:
    vectors = np.asarray(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# Candidates 0-2 point one way (near-duplicates), 3-4 another; relevance falls with position.
CLUSTERS = unit([1, 0], [1, 0.05], [1, -0.05], [0, 1], [0.05, 1])
RELEVANCE = np.array([1.0, 0.95, 0.9, 0.5, 0.4])


def test_zero_diversity_is_the_relevance_order() -> None:
    assert mmr(RELEVANCE, CLUSTERS, 5, 0.0).tolist() == [0, 1, 2, 3, 4]
    shuffled = np.array([0.2, 0.9, 0.5, 0.9, 0.1])
    assert mmr(shuffled, CLUSTERS, 3, 0.0).tolist() == [1, 3, 2]  # ties: earlier first


def test_diversity_reaches_into_the_other_cluster() -> None:
    # the second pick: candidate 1 is (1-d)*0.9 - d*~1.0, candidate 3 is (1-d)*0.17 - d*0
    assert mmr(RELEVANCE, CLUSTERS, 2, 0.1).tolist() == [0, 1]
    assert mmr(RELEVANCE, CLUSTERS, 2, 0.5).tolist() == [0, 3]
    assert mmr(RELEVANCE, CLUSTERS, 2, 1.0).tolist() == [0, 3]


def test_the_first_pick_is_always_the_most_relevant() -> None:
    for d in (0.0, 0.3, 0.7, 1.0):
        assert mmr(RELEVANCE, CLUSTERS, 1, d).tolist() == [0]


def test_picks_are_distinct_and_bounded_by_the_pool() -> None:
    picks = mmr(RELEVANCE, CLUSTERS, 10, 0.6)
    assert sorted(picks.tolist()) == [0, 1, 2, 3, 4]
    assert mmr(np.array([]), np.zeros((0, 2), np.float32), 3, 0.5).size == 0


def test_ild_rises_with_diversity() -> None:
    plain = intra_list_diversity(CLUSTERS[mmr(RELEVANCE, CLUSTERS, 3, 0.0)])
    varied = intra_list_diversity(CLUSTERS[mmr(RELEVANCE, CLUSTERS, 3, 0.8)])
    assert varied > plain + 0.3


def test_ild_known_answers() -> None:
    assert intra_list_diversity(unit([1, 0])) == 0.0
    assert intra_list_diversity(unit([1, 0], [1, 0])) == pytest.approx(0.0, abs=1e-6)
    assert intra_list_diversity(unit([1, 0], [0, 1])) == pytest.approx(1.0)
    assert intra_list_diversity(unit([1, 0], [-1, 0])) == pytest.approx(2.0)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), float("inf"), True, "0.5", None])
def test_diversity_outside_0_1_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="diversity"):
        check_diversity(bad)
    with pytest.raises(ValueError, match="diversity"):
        mmr(RELEVANCE, CLUSTERS, 2, bad)  # type: ignore[arg-type]


def test_the_pool_grows_only_with_diversity() -> None:
    assert pool_size(10, 0.0) == 10
    assert pool_size(10, 0.3) == 50
    assert pool_size(100, 1.0) == POOL_MAX


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="embeddings"):
        mmr(RELEVANCE, CLUSTERS[:3], 2, 0.5)


def textbook_mmr(relevance: np.ndarray, vectors: np.ndarray, n: int, d: float) -> list[int]:
    """MMR as defined, one candidate at a time in plain Python: relevance scaled 0-1, the
    first pick unpenalised, each next one the best (1 - d)·relevance - d·(max similarity to
    the picks), earlier position first among equals."""
    low, high = float(relevance.min()), float(relevance.max())
    rel = [(float(r) - low) / (high - low) for r in relevance]
    picks: list[int] = []
    for _ in range(min(n, len(rel))):
        best, best_value = -1, -np.inf
        for i in range(len(rel)):
            if i in picks:
                continue
            penalty = max((float(vectors[i] @ vectors[j]) for j in picks), default=0.0)
            value = (1.0 - d) * rel[i] - d * penalty
            if value > best_value:
                best, best_value = i, value
        picks.append(best)
    return picks


@pytest.mark.parametrize("seed", range(20))
def test_picks_follow_the_definition_on_random_candidates(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size, n = int(rng.integers(2, 60)), int(rng.integers(1, 15))
    vectors = rng.normal(size=(size, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # some pairs point apart
    relevance = rng.random(size)
    d = float(rng.choice([0.1, 0.3, 0.5, 0.8, 1.0]))
    assert mmr(relevance, vectors, n, d).tolist() == textbook_mmr(relevance, vectors, n, d)
