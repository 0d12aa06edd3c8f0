"""Known answers for every arm, the arm registry and the user history, on tiny synthetic data."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys_gql.artifacts import (
    ArmRecord,
    ArtifactDir,
    ArtifactWriter,
    DataFingerprint,
    RankerRecord,
)
from recsys_gql.movielens import load_movielens
from recsys_gql.recsys import ann
from recsys_gql.recsys.arm import Catalog, History, Probe, TrainingSet, top_k_allowed
from recsys_gql.recsys.arms import ARMS, REQUIRED, arm_type, popularity
from recsys_gql.recsys.arms.als import AlsArm, AlsConfig
from recsys_gql.recsys.arms.content import ContentArm, ContentConfig
from recsys_gql.recsys.arms.ease import (
    EaseArm,
    EaseConfig,
    eligible,
    fit_weights,
    gram,
    training_bytes,
)
from recsys_gql.recsys.arms.popularity import DAY, PopularityArm, PopularityConfig
from recsys_gql.recsys.content import ContentGraph
from recsys_gql.recsys.vocab import IdVocab
from tests.conftest import BLOCK_A, BLOCK_B, USERS_A, USERS_B
from training.fit import training_set

T0 = 1_500_000_000.0


def history(rows: list[int], ratings: list[float], times: list[float]) -> History:
    return History.build(
        np.array(rows, dtype=np.int64),
        np.array(ratings, dtype=np.float32),
        np.array(times, dtype=np.float64),
        catalog_now=T0 + 1e6,
    )


def block_graph(n_items: int, seed: int = 0) -> ContentGraph:
    """Neighbours from embeddings with the tiny data's two planted blocks."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n_items, 8)).astype(np.float32) * 0.3
    vectors[: n_items // 2, 0] += 3.0
    vectors[n_items // 2 :, 1] += 3.0
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = ann.build(vectors, ann.IndexSpec())
    return ContentGraph.build(index, vectors, 5)


def tiny_set(folder: Path) -> TrainingSet:
    data = load_movielens(folder)
    users = IdVocab.from_values(data.ratings["userId"])
    items = IdVocab.from_values(data.movies["movieId"])
    catalog = Catalog(
        items,
        np.zeros((len(items), 2), dtype=np.uint8),
        np.full(len(items), 1990, dtype=np.int16),
        block_graph(len(items)),
    )
    return training_set(data.ratings, users, catalog)


# -- the user's history ---------------------------------------------------------------------


def test_history_ranks_ratings_by_recency_with_ties_sharing_a_rank() -> None:
    user = history([5, 2, 9, 4], [4.0, 3.0, 5.0, 1.0], [T0 + 10, T0 + 30, T0 + 30, T0])
    assert user.recency.tolist() == [2.0, 0.0, 0.0, 3.0]  # how many ratings are newer
    assert user.now == T0 + 30
    np.testing.assert_allclose(
        user.recency_weights(half_life=2.0, floor=0.2),
        [0.2 + 0.8 * 0.5, 1.0, 1.0, 0.2 + 0.8 * 0.5**1.5],
        rtol=1e-6,
    )
    assert user.recency_weights(half_life=0.0, floor=0.2).tolist() == [1.0] * 4
    assert user.latest(3).tolist() == [1, 2, 0]
    empty = history([], [], [])
    assert (empty.size, empty.now) == (0, T0 + 1e6)


# -- ALS -------------------------------------------------------------------------------------


def test_als_recovers_a_planted_block_structure(tiny_movielens: Path) -> None:
    data = tiny_set(tiny_movielens)
    arm = AlsArm.fit(data, AlsConfig(factors=2, iterations=30, regularization=1.0))
    items = data.catalog.items
    a_cols, b_cols = items.indices(BLOCK_A), items.indices(BLOCK_B)
    users = IdVocab.from_values(USERS_A + USERS_B)
    for user_ids, own, other in ((USERS_A, a_cols, b_cols), (USERS_B, b_cols, a_cols)):
        for user_id in user_ids:
            user = data.history(int(users.indices([user_id])[0]))
            scores = arm.score(user).values
            unseen_own = [c for c in own if c not in set(user.rows.tolist())]
            # every unseen movie of the user's own block outscores every movie of the other
            assert scores[unseen_own].min() > scores[other].max()


def test_als_fold_in_solves_the_training_system_and_its_terms_sum_to_the_score() -> None:
    rng = np.random.default_rng(1)
    factors = rng.standard_normal((30, 4)).astype(np.float32)
    config = AlsConfig(factors=4, regularization=2.0, alpha=0.5)
    arm = AlsArm(config, factors)
    user = history([3, 7, 11], [5.0, 3.5, 4.0], [T0, T0 + 1, T0 + 2])
    fold = arm.fold_in(user.rows, user.ratings)
    y = factors.astype(np.float64)
    c = 0.5 * user.ratings.astype(np.float64)
    a = y.T @ y + 2.0 * np.eye(4) + (y[user.rows].T * (c - 1.0)) @ y[user.rows]
    np.testing.assert_allclose(a @ fold.factor, y[user.rows].T @ c, rtol=1e-4, atol=1e-5)
    scores = arm.score(user)
    targets = np.arange(30, dtype=np.int64)
    terms = arm.contributions(user, scores, targets)
    np.testing.assert_allclose(terms.sum(axis=1), scores.values, rtol=1e-4, atol=1e-5)


def test_als_is_reproducible_with_a_seed(tiny_movielens: Path) -> None:
    data = tiny_set(tiny_movielens)
    config = AlsConfig(factors=4, iterations=5, num_threads=1)
    one, two = AlsArm.fit(data, config), AlsArm.fit(data, config)
    np.testing.assert_allclose(one.item_factors, two.item_factors, rtol=1e-5)


# -- EASE^R ----------------------------------------------------------------------------------


def random_ratings(users: int, items: int, density: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((users, items)) < density) * rng.choice([3.0, 4.0, 5.0], (users, items))
    return sp.csr_matrix(dense.astype(np.float32))


def test_ease_weights_are_the_closed_form() -> None:
    ratings = random_ratings(80, 12, 0.4, seed=2)
    columns = np.arange(12, dtype=np.int64)
    binary = (ratings.toarray() > 0).astype(np.float64)
    np.testing.assert_array_equal(gram(sp.csr_matrix(binary.astype(np.float32))), binary.T @ binary)
    p = np.linalg.inv(binary.T @ binary + 7.0 * np.eye(12))
    expected = np.eye(12) - p / np.diag(p)
    np.testing.assert_allclose(fit_weights(ratings, columns, 7.0), expected, atol=1e-5)
    assert np.diag(fit_weights(ratings, columns, 7.0)).tolist() == [0.0] * 12


def test_ease_scores_are_the_recency_weighted_product_and_explain_exactly() -> None:
    dense = random_ratings(60, 10, 0.5, seed=3).toarray()
    dense[:, 9] = 0  # an unrated movie gets no row or column
    ratings = sp.csr_matrix(dense)
    catalog = Catalog(
        IdVocab(np.arange(1, 11)), np.zeros((10, 1), np.uint8), np.zeros(10, np.int16),
        block_graph(10),
    )  # fmt: skip
    data = TrainingSet(ratings, ratings.astype(np.float64), catalog)
    config = EaseConfig(regularization=[5.0], half_life=[1.0], floor=[0.25], min_ratings=1)
    arm = EaseArm.fit(data, config)
    assert arm.columns.tolist() == list(range(9))
    user = history([2, 9, 4], [5.0, 4.0, 3.0], [T0, T0 + 5, T0 + 9])
    weights = user.recency_weights(1.0, 0.25)  # 4 (newest) 1.0, 9: 0.625, 2: 0.4375
    np.testing.assert_allclose(weights, [0.4375, 0.625, 1.0])
    b = fit_weights(ratings, arm.columns, 5.0)
    expected = np.zeros(10)
    expected[:9] = weights[0] * b[2] + weights[2] * b[4]  # movie 9 is outside EASE
    scores = arm.score(user)
    np.testing.assert_allclose(scores.values, expected, rtol=1e-5, atol=1e-6)
    unweighted = arm.features(user, scores, np.arange(9))["ease_all"]
    np.testing.assert_allclose(unweighted, b[2] + b[4], rtol=1e-5, atol=1e-6)
    terms = arm.contributions(user, scores, np.arange(10, dtype=np.int64))
    np.testing.assert_allclose(terms.sum(axis=1), expected, rtol=1e-5, atol=1e-6)
    assert (terms[:, 1] == 0).all()  # the unknown movie contributes nothing
    np.testing.assert_allclose(arm.score_many([user, user])[1], expected, rtol=1e-5, atol=1e-6)
    # that user rated a third of EASE's movies: the dense product; one rating: rows gathered
    single = history([5], [4.0], [T0])
    gathered = np.zeros(10)
    gathered[:9] = b[5]
    np.testing.assert_allclose(arm.score(single).values, gathered, rtol=1e-5, atol=1e-6)


def test_ease_is_skipped_over_its_memory_budget_and_its_training_stays_within_it() -> None:
    ratings = random_ratings(400, 300, 0.1, seed=4)
    catalog = Catalog(
        IdVocab(np.arange(1, 301)), np.zeros((300, 1), np.uint8), np.zeros(300, np.int16),
        block_graph(300),
    )  # fmt: skip
    data = TrainingSet(ratings, ratings.astype(np.float64), catalog)
    n = eligible(ratings, 5).size
    assert n == int((np.diff(ratings.tocsc().indptr) >= 5).sum())
    small = EaseConfig(min_ratings=5, max_memory_mb=training_bytes(n) / 2**20 * 0.99)
    reason = EaseArm.skip_reason(data, small)
    assert reason is not None
    assert f"{n:,} movies with at least 5 ratings need" in reason
    assert "ease.max_memory_mb" in reason
    assert EaseArm.skip_reason(data, small.model_copy(update={"max_memory_mb": 1.0})) is None
    tracemalloc.start()
    try:
        fit_weights(ratings, eligible(ratings, 5), 10.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= training_bytes(n) + 2**20  # the budget's model, plus a little bookkeeping


def test_ease_tuning_keeps_the_setting_with_the_best_probe_ndcg(tiny_movielens: Path) -> None:
    data = tiny_set(tiny_movielens)
    users = np.arange(10, dtype=np.int64)
    liked = [np.setdiff1d(data.catalog.items.indices(BLOCK_A), data.history(u).rows) for u in users]
    probe = Probe(users, liked)
    config = EaseConfig(
        regularization=[1.0, 50.0], half_life=[0.0, 2.0], floor=[0.1], min_ratings=1
    )
    arm, trials = EaseArm.tune(data, probe, config)
    assert len(trials) == 4
    best = max(trials, key=lambda t: t["ndcg_at_10"])
    assert (arm.regularization, arm.half_life) == (best["regularization"], best["half_life"])
    assert arm.config.regularization == [best["regularization"]]


# -- content ---------------------------------------------------------------------------------


def test_content_scores_are_the_weighted_mean_similarity_of_liked_movies() -> None:
    neighbours = np.array([[1, 2], [0, 3], [3, 0], [2, 1]], dtype=np.int32)
    similarities = np.array([[0.9, 0.5], [0.8, 0.4], [0.7, 0.3], [0.6, 0.2]], dtype=np.float32)
    graph = ContentGraph(neighbours, similarities)
    arm = ContentArm(ContentConfig(profile_shrink=0.0, recent_likes=1), graph, global_mean=3.0)
    # mean rating 3.5: weights 5.0 - 3.5 + 0.5 = 2.0 (movie 0) and 3.0 -> 0 (movie 3, not liked)
    user = history([0, 3], [5.0, 2.0], [T0, T0 + 1])
    assert arm.weights(user).tolist() == [2.0, 0.0]
    scores = arm.score(user)
    assert scores.rows is not None
    dense = scores.at(np.arange(4, dtype=np.int64))
    np.testing.assert_allclose(dense, [0.0, 0.9, 0.5, 0.0], rtol=1e-6)
    targets = np.arange(4, dtype=np.int64)
    terms = arm.contributions(user, scores, targets)
    np.testing.assert_allclose(terms.sum(axis=1), dense, rtol=1e-6)
    # "recent": the newest liked movie only (movie 3 is newer but not liked)
    liked_two = history([0, 1], [5.0, 5.0], [T0, T0 + 1])
    recent = arm.features(liked_two, arm.score(liked_two), targets)["content_recent"]
    np.testing.assert_allclose(recent, [0.8, 0.0, 0.0, 0.4], rtol=1e-6)


# -- popularity ------------------------------------------------------------------------------


def popularity_set() -> TrainingSet:
    # movie 0: rated long ago by everyone; movie 1: rated recently; movie 2: never
    rows = [0, 1, 2, 3, 0, 1]
    cols = [0, 0, 0, 0, 1, 1]
    values = np.float32([5.0, 5.0, 4.0, 4.0, 4.0, 4.0])
    times = [T0, T0, T0 + DAY, T0 + DAY, T0 + 400 * DAY, T0 + 401 * DAY]
    ratings = sp.csr_matrix((values, (rows, cols)), shape=(4, 3))
    stamps = sp.csr_matrix((np.array(times), (rows, cols)), shape=(4, 3))
    catalog = Catalog(
        IdVocab(np.arange(1, 4)), np.zeros((3, 1), np.uint8), np.zeros(3, np.int16),
        ContentGraph(np.zeros((3, 1), np.int32), np.zeros((3, 1), np.float32)),
    )  # fmt: skip
    return TrainingSet(ratings, stamps, catalog)


def test_popularity_counts_a_bayesian_average_and_windows_before_the_users_time() -> None:
    data = popularity_set()
    arm = PopularityArm.fit(data, PopularityConfig(prior_count=2.0, step_days=1.0,
                                                   window_days=[90.0]))  # fmt: skip
    assert arm.count.tolist() == [4, 2, 0]
    global_mean = 26.0 / 6.0
    np.testing.assert_allclose(
        arm.bayesian, [(18 + 2 * global_mean) / 6, (8 + 2 * global_mean) / 4, global_mean],
        rtol=1e-6,
    )  # fmt: skip
    assert arm.best_rated.tolist() == [0, 2, 1]  # 4.44, the global mean 4.33, 4.17
    late, early = T0 + 402 * DAY, T0 + 2 * DAY
    assert arm.window_counts(late, 90.0).tolist() == [0.0, 2.0, 0.0]
    assert arm.window_counts(early, 90.0).tolist() == [4.0, 0.0, 0.0]
    assert arm.window_counts(late, 0.0).tolist() == [4.0, 2.0, 0.0]
    # the served score follows the user's time: then, movie 0; now, movie 1
    now_user = history([2], [3.0], [late])
    then_user = history([2], [3.0], [early])
    assert int(np.argmax(arm.score(now_user).values)) == 1
    assert int(np.argmax(arm.score(then_user).values)) == 0
    ages = arm.features(then_user, arm.score(then_user), np.arange(3))["popularity_age"]
    assert ages[0] == pytest.approx(2 / 365.25)
    assert ages[1] < 0  # first rated after the user's time
    assert np.isnan(ages[2])  # never rated


@pytest.mark.parametrize("window", [90.0, 0.0])
def test_popularity_scores_kept_per_time_step_are_the_computed_ones_and_read_only(
    window: float,
) -> None:
    data = popularity_set()
    arm = PopularityArm.fit(data, PopularityConfig(step_days=1.0, window_days=[window]))
    for when in (T0 - DAY, T0 + 0.5 * DAY, T0 + 2 * DAY, T0 + 402 * DAY, T0 + 900 * DAY):
        user = history([2], [3.0], [when])
        counts = np.log1p(np.float32([4.0, 2.0, 0.0]))  # all-time, as the arm keeps them
        expected = np.log1p(arm.window_counts(when, window)) + 1e-3 * counts
        kept = arm.score(user).values
        np.testing.assert_array_equal(kept, expected.astype(np.float32))
        assert arm.score(user).values is kept  # the same vector again, not recomputed
        assert not kept.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            kept[0] = 1.0
    # two users a few hours apart in one step share one vector
    first, second = history([2], [3.0], [T0 + 402 * DAY]), history([2], [3.0], [T0 + 402.2 * DAY])
    assert arm.score(first).values is arm.score(second).values


def test_popularity_keeps_a_bounded_number_of_score_vectors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The memory for kept vectors is what bounds them: room for 5 vectors of 3 movies."""
    monkeypatch.setattr(popularity, "SCORE_CACHE_MB", 5 * 3 * 4 / 2**20)
    arm = PopularityArm.fit(popularity_set(), PopularityConfig(step_days=1.0, window_days=[2.0]))
    for day in range(40):  # 40 distinct pairs of steps
        arm.score(history([2], [3.0], [T0 + day * DAY]))
    kept = arm._scores_between.cache_info()
    assert kept.maxsize == 5
    assert kept.currsize == 5
    assert kept.misses == 40


def test_popularity_tuning_picks_the_window_that_finds_the_held_out_likes() -> None:
    data = popularity_set()
    config = PopularityConfig(step_days=1.0, window_days=[0.0, 30.0])
    late_user = 1  # rated movies 0 and 1; nothing to find but movie 2, never rated
    probe = Probe(np.array([late_user]), [np.array([2])])
    arm, trials = PopularityArm.tune(data, probe, config)
    assert [t["window_days"] for t in trials] == [0.0, 30.0]
    assert arm.config.window_days in ([0.0], [30.0])


def arm_sections_all() -> dict[str, ArmRecord]:
    """Manifest sections for every registered arm, fitted, with default configs."""
    return {
        kind.name: ArmRecord(status="fitted", config=kind.config_type()().model_dump(mode="json"))
        for kind in ARMS
    }


# -- the registry ----------------------------------------------------------------------------


def test_the_registry_names_every_arm_once() -> None:
    names = [arm.name for arm in ARMS]
    assert names == ["als", "ease", "content", "popularity"]
    assert set(names) >= REQUIRED
    assert arm_type("ease") is EaseArm
    with pytest.raises(KeyError, match="unknown arm 'knn'; known: als, ease, content, popularity"):
        arm_type("knn")


def test_each_arm_writes_exactly_its_files_and_loads_back_to_the_same_scores(
    tiny_movielens: Path, tmp_path: Path
) -> None:
    data = tiny_set(tiny_movielens)
    user = data.history(0)
    for kind in ARMS:
        config = kind.config_type()()
        if kind is AlsArm:
            config = AlsConfig(factors=2, iterations=5)
        if kind is EaseArm:
            config = EaseConfig(min_ratings=1)
        arm = kind.fit(data, config)
        writer = ArtifactWriter(tmp_path / kind.name)
        details = arm.save(writer)
        writer.finalize(
            run_id=kind.name, libraries={}, config={}, counts={}, models={},
            data=DataFingerprint(sha256="x", files={}), content_index=ann.IndexSpec(),
            arms={
                other.name: ArmRecord(
                    status="fitted" if other is kind else "skipped",
                    reason=None if other is kind or other.name not in REQUIRED else "x",
                    config=other.config_type()().model_dump(mode="json"),
                    files=list(other.files()) if other is kind else [],
                )
                for other in ARMS
                if other is kind or other.name not in REQUIRED
            }
            | {
                name: ArmRecord(status="fitted", config=arm_type(name).config_type()().model_dump())
                for name in REQUIRED
                if name != kind.name
            },
            ranker=RankerRecord(status="skipped", reason="test"),
        )  # fmt: skip
        written = sorted(p.name for p in (tmp_path / kind.name).iterdir())
        assert written == sorted([*kind.files(), "manifest.json"])
        run = ArtifactDir.open(tmp_path / kind.name)
        loaded = kind.load(run, data.catalog, arm.config, details)
        targets = np.arange(data.catalog.size, dtype=np.int64)
        np.testing.assert_array_equal(loaded.score(user).at(targets), arm.score(user).at(targets))
        assert loaded.feature_names() == arm.feature_names()


def test_unknown_ids_and_frames_build_a_consistent_training_set() -> None:
    ratings = pd.DataFrame(
        {"userId": [1, 1, 2], "movieId": [10, 20, 10], "rating": np.float32([4, 5, 3]),
         "timestamp": [5, 9, 7]}
    )  # fmt: skip
    catalog = Catalog(
        IdVocab.from_values([10, 20, 30]), np.zeros((3, 1), np.uint8), np.zeros(3, np.int16),
        ContentGraph(np.zeros((3, 1), np.int32), np.zeros((3, 1), np.float32)),
    )  # fmt: skip
    data = training_set(ratings, IdVocab.from_values([1, 2]), catalog)
    first = data.history(0)
    assert first.rows.tolist() == [0, 1]
    assert first.times.tolist() == [5.0, 9.0]
    assert first.recency.tolist() == [1.0, 0.0]
    assert data.now == 9.0


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 3000),
    st.integers(1, 300),
    st.sampled_from(["normal", "ties", "constant"]),
    st.floats(0.0, 1.0),
    st.integers(0, 2**32 - 1),
)
def test_top_k_allowed_selects_the_largest_allowed_scores(
    n: int, k: int, shape: str, share: float, seed: int
) -> None:
    """Any size, ties, all equal, few or no allowed movies: the scores selected are the ``k``
    largest allowed ones, each row once, only allowed rows (which of tied rows is left to the
    selection: training and serving share it, so both see the same candidates)."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(n).astype(np.float32)
    if shape == "ties":
        values = np.round(values, 1)
    elif shape == "constant":
        values[:] = 0.5
    allowed = rng.random(n) < share
    got = top_k_allowed(values, allowed, k)
    best = np.sort(values[allowed])[::-1][:k]
    assert got.dtype == np.int64
    assert np.unique(got).size == got.size
    assert allowed[got].all()
    np.testing.assert_array_equal(np.sort(values[got])[::-1], best)
