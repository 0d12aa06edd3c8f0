"""The content neighbour graph: known answers on hand-made vectors."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_gql.recsys.content import ContentGraph, build_index


def unit(rows: list[list[float]]) -> np.ndarray:
    vectors = np.asarray(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# two tight pairs pointing in different directions, plus a loner between them
VECTORS = unit([[1, 0, 0], [0.95, 0.05, 0], [0, 1, 0], [0.05, 0.95, 0], [0.5, 0.5, 0.7]])


def test_neighbours_exclude_the_movie_itself_and_are_capped_by_the_catalog() -> None:
    graph = ContentGraph.build(build_index(VECTORS), VECTORS, 50)
    assert graph.neighbors.shape == (5, 4)
    assert not (graph.neighbors == np.arange(5)[:, None]).any()
    assert graph.neighbors[0, 0] == 1  # each pair's nearest is its twin
    assert graph.neighbors[2, 0] == 3
    sims = graph.similarities
    assert (np.diff(sims, axis=1) <= 1e-6).all()  # best first


def test_scores_are_the_weighted_mean_similarity_over_neighbourhoods() -> None:
    graph = ContentGraph(
        np.array([[1, 2], [0, 2], [0, 1]], dtype=np.int32),
        np.array([[0.9, 0.1], [0.9, 0.3], [0.1, 0.3]], dtype=np.float32),
    )
    scores = graph.scores(np.array([0, 1]), np.array([3.0, 1.0], dtype=np.float32))
    assert scores.tolist() == pytest.approx([0.9 / 4, 2.7 / 4, (0.3 + 0.3) / 4])
    # disliked movies (weight 0) add nothing; no liked movie gives all zeros
    assert graph.scores(np.array([0]), np.array([0.0], dtype=np.float32)).tolist() == [0, 0, 0]
    contributions = graph.contributions(
        np.array([2, 1]), np.array([0, 1]), np.array([3.0, 1.0], dtype=np.float32)
    )
    np.testing.assert_allclose(contributions, [[0.3 / 4, 0.3 / 4], [2.7 / 4, 0.0]])


def test_contributions_add_up_to_the_scores() -> None:
    rng = np.random.default_rng(3)
    vectors = unit(rng.normal(size=(40, 6)).tolist())
    graph = ContentGraph.build(build_index(vectors), vectors, 6)
    rows = np.array([2, 9, 17, 30])
    weights = np.array([1.5, 0.0, 0.5, 1.0], dtype=np.float32)
    scores = graph.scores(rows, weights)
    targets = np.argsort(-scores)[:8]
    totals = graph.contributions(targets, rows, weights).sum(axis=1)
    np.testing.assert_allclose(totals, scores[targets], rtol=1e-5)
