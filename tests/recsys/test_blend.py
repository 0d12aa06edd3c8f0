"""The explicit-α blend: the candidate path returns exactly the exhaustive blend's top-n,
touching fewer movies."""

from __future__ import annotations

import numpy as np
import pytest

from bench.scale_data import SynthSpec, catalog, write_run
from recsys_gql.recsys import ann
from recsys_gql.recsys.blend import (
    PriorContent,
    candidate_top_n,
    dense_top_n,
    normalise,
    ramped_prior_weight,
    top_n,
)
from recsys_gql.recsys.content import SCATTER_FACTOR, ContentGraph
from recsys_gql.recsys.engine import Engine

N_ITEMS = 5_000


def content_arm(rng: np.random.Generator, weight: float, prior_ties: bool) -> PriorContent:
    items = np.unique(rng.integers(0, N_ITEMS, 400)).astype(np.int64)
    graph = rng.uniform(-0.1, 0.9, items.size).astype(np.float32)
    prior = rng.standard_normal(N_ITEMS).astype(np.float32)
    if prior_ties:
        prior = np.round(prior).astype(np.float32)  # a handful of distinct values: many ties
    return PriorContent(items, graph, prior, weight)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("alpha", [0.0, 0.35, 1.0])
def test_candidate_top_n_equals_the_exhaustive_reference(seed: int, alpha: float) -> None:
    rng = np.random.default_rng(seed)
    collab = rng.standard_normal(N_ITEMS).astype(np.float32)
    if seed % 2:
        collab[rng.random(N_ITEMS) < 0.7] = 0.0  # unrated movies' zero factors: ties at zero
    arm = content_arm(rng, weight=[0.0, 0.3][seed % 2], prior_ties=seed >= 3)
    mask = rng.random(N_ITEMS) < [1.0, 0.9, 0.4][seed % 3]  # filters and rated movies
    for n in (1, 10, 50):
        fast = candidate_top_n(collab, arm, mask, alpha, n, k=64, dense_below=0)
        dense = dense_top_n(collab, arm.dense(N_ITEMS), mask, alpha, n)
        assert fast.path == "candidates"
        assert fast.examined < mask.sum()
        np.testing.assert_array_equal(fast.rows, dense.rows)
        np.testing.assert_array_equal(fast.score, dense.score)
        np.testing.assert_array_equal(fast.collab, dense.collab)
        np.testing.assert_array_equal(fast.content, dense.content)


@pytest.mark.parametrize(
    "liked",
    [
        2,  # 24 neighbour entries for 600 movies: sorted (np.unique)
        30,  # 360 entries: scattered into a catalog-sized array
    ],
)
def test_sparse_content_scores_equal_the_dense_ones_bit_for_bit(liked: int) -> None:
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((600, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    graph = ContentGraph.build(ann.build(vectors, ann.IndexSpec()), vectors, 12)
    assert (SCATTER_FACTOR * 12 * liked >= 600) == (liked == 30)
    rows = rng.choice(600, liked, replace=False).astype(np.int64)
    weights = rng.uniform(0.1, 2.0, liked).astype(np.float32)
    weights[0] = -0.5  # a disliked movie adds nothing
    items, values = graph.sparse_scores(rows, weights)
    dense = graph.scores(rows, weights)
    np.testing.assert_array_equal(values, dense[items])
    assert (np.delete(dense, items) == 0).all()


def test_small_candidate_sets_take_the_dense_path() -> None:
    rng = np.random.default_rng(0)
    collab = rng.standard_normal(N_ITEMS).astype(np.float32)
    mask = np.zeros(N_ITEMS, dtype=bool)
    mask[:100] = True
    blend = candidate_top_n(collab, content_arm(rng, 0.2, False), mask, 0.5, 10, k=64)
    assert blend.path == "dense"
    assert candidate_top_n(collab, content_arm(rng, 0.2, False), ~mask, 0.5, 10).path == "dense"
    assert set(blend.rows.tolist()) <= set(range(100))


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    synth = SynthSpec(movies=6_000, users=200)
    cat = catalog(synth)
    spec = ann.IndexSpec(kind="flat")
    index = ann.build(cat.embeddings, spec)
    graph = ContentGraph.build(index, cat.embeddings, 20)
    out = tmp_path_factory.mktemp("candidates") / "run"
    write_run(synth, out, index=index, index_spec=spec, graph=graph, cat=cat, stages={})
    engine = Engine.load(out)
    engine.dense_blend_below = 0  # take the candidate path even on this small catalog
    return engine


def test_engine_recommend_equals_blending_every_candidate(engine: Engine) -> None:
    settings = engine.settings
    for user_id in engine.users.ids[:40].tolist():
        user = engine.history(user_id)
        collab = engine.als.score(user).values
        scored = engine.content.score(user)
        assert scored.rows is not None
        weight = ramped_prior_weight(settings.popularity_weight, user.size, settings.ramp)
        content = PriorContent(scored.rows, scored.values, engine.prior, weight).dense(collab.size)
        for genres in (None, ["Genre03", "Genre11"]):
            mask = engine.candidate_mask(genres)
            mask[user.rows] = False
            for alpha in (0.2, 0.8):
                dense = dense_top_n(collab, content, mask, alpha, 10)
                recs = engine.recommend(user_id, n=10, alpha=alpha, genres=genres)
                assert [r.movie_id for r in recs] == engine.movies.ids[dense.rows].tolist()
                assert [r.score for r in recs] == dense.score.tolist()


def test_cold_start_popularity_equals_ranking_every_candidate(engine: Engine) -> None:
    unknown = int(engine.users.ids.max()) + 1
    for genres in (None, ["Genre05"]):
        mask = engine.candidate_mask(genres)
        candidates = np.flatnonzero(mask)
        scores = engine.cold_scores[candidates]
        best = top_n(scores, 10)
        expected = normalise(scores)[best]
        recs = engine.recommend(unknown, n=10, genres=genres)
        assert [r.movie_id for r in recs] == engine.movies.ids[candidates[best]].tolist()
        assert [r.score for r in recs] == expected.tolist()
        assert {r.source for r in recs} == {"popularity"}
