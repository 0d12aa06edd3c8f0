"""Known-answer tests of the engine on the tiny two-taste data set."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from recsys_gql.errors import InvalidParameter, UnknownMovie
from recsys_gql.recsys.blend import normalise
from recsys_gql.recsys.content import SentenceEncoder
from recsys_gql.recsys.engine import Engine, HybridSettings, Recommendation
from tests.conftest import BLOCK_A, BLOCK_B, USERS_A, write_tiny_movielens
from training.config import TrainConfig
from training.pipeline import train

# Every tiny movie has about a dozen ratings, so a popularity prior carries no signal here.
CONFIG = TrainConfig.model_validate(
    {
        "arms": {"als": {"factors": 2, "iterations": 15, "regularization": 1.0, "alpha": 1.0}},
        "hybrid": {"popularity_weight": 0.0, "alpha": 0.5},  # mechanics, not tuned values
    }
)


def trained_engine(root: Path, encoder: SentenceEncoder, config: TrainConfig) -> Engine:
    data = write_tiny_movielens(root / "data")
    train(
        data,
        root / "artifacts",
        config,
        cache_dir=None,
        encoder_factory=lambda _: encoder,
        report=lambda _: None,
        show_progress=False,
    )
    return Engine.load(root / "artifacts" / "current", encoder=encoder)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, sentence_encoder: SentenceEncoder) -> Engine:
    return trained_engine(tmp_path_factory.mktemp("engine"), sentence_encoder, CONFIG)


@pytest.fixture(scope="module")
def blend_engine(
    tmp_path_factory: pytest.TempPathFactory, sentence_encoder: SentenceEncoder
) -> Engine:
    """A run without a ranking stage: the default is the ramped linear blend."""
    config = CONFIG.model_copy(
        update={"ranker": CONFIG.ranker.model_copy(update={"enabled": False})}
    )
    return trained_engine(tmp_path_factory.mktemp("blend"), sentence_encoder, config)


def ids(recs: list) -> list[int]:  # type: ignore[type-arg]
    return [r.movie_id for r in recs]


def test_alpha_zero_is_the_content_ranking_and_one_the_collab_ranking(engine: Engine) -> None:
    user = USERS_A[0]
    ratings = engine.training_ratings(user)
    history = engine.history(user)
    unseen = [m for m in BLOCK_A + BLOCK_B if m not in ratings]
    cols = engine.movies.indices(unseen)
    content = engine.content.score(history).at(cols)  # no popularity prior in CONFIG
    collab = engine.als.score(history).at(cols)
    by_content = [unseen[i] for i in np.argsort(-content, kind="stable")]
    by_collab = [unseen[i] for i in np.argsort(-collab, kind="stable")]
    assert ids(engine.recommend(user, n=len(unseen), alpha=0.0)) == by_content
    assert ids(engine.recommend(user, n=len(unseen), alpha=1.0)) == by_collab
    half = engine.recommend(user, n=5, alpha=0.5)
    for rec in half:
        assert rec.score == pytest.approx(0.5 * rec.collab_score + 0.5 * rec.content_score)
        assert 0.0 <= rec.collab_score <= 1.0
        assert 0.0 <= rec.content_score <= 1.0


def test_a_user_gets_their_own_taste(engine: Engine) -> None:
    recs = engine.recommend(USERS_A[0], n=4)
    assert set(ids(recs)) <= set(BLOCK_A)


@pytest.mark.parametrize("which", ["engine", "blend_engine"])
def test_folding_in_a_new_taste_moves_its_movies_up(
    which: str, request: pytest.FixtureRequest
) -> None:
    engine: Engine = request.getfixturevalue(which)
    alpha = None
    user = USERS_A[0]
    before = engine.training_ratings(user)
    unseen = len(BLOCK_A + BLOCK_B) - len(before)
    rank_before = ids(engine.recommend(user, n=unseen, alpha=alpha, ratings=before))
    after = {**before, **{m: 5.0 for m in BLOCK_B[:3]}}
    rank_after = ids(engine.recommend(user, n=unseen - 3, alpha=alpha, ratings=after))
    horror = BLOCK_B[3:]
    mean_before = np.mean([rank_before.index(m) for m in horror])
    mean_after = np.mean([rank_after.index(m) for m in horror])
    assert mean_after < mean_before
    if engine.ranker is None:  # the tiny data has no user of two tastes to teach a ranker with
        assert rank_after[0] in horror


def test_a_brand_new_user_with_ratings_is_folded_in(engine: Engine) -> None:
    recs = engine.recommend(99_999, n=3, ratings={11: 5.0, 12: 5.0, 13: 4.5})
    assert set(ids(recs)) <= set(BLOCK_B)
    assert all(r.source == "ranker" for r in recs)
    blended = engine.recommend(99_999, n=3, alpha=0.5, ratings={11: 5.0, 12: 5.0, 13: 4.5})
    assert set(ids(blended)) <= set(BLOCK_B)
    assert all(r.source == "hybrid" for r in blended)


@pytest.mark.parametrize("alpha", [None, 0.5])
def test_explanations_name_movies_the_user_rated(engine: Engine, alpha: float | None) -> None:
    ratings = engine.training_ratings(USERS_A[1])
    for rec in engine.recommend(USERS_A[1], n=4, alpha=alpha):
        assert 1 <= len(rec.because) <= 3
        for contribution in rec.because:
            assert contribution.movie_id in ratings
            assert contribution.arm in {"als", "ease", "content"}
            assert contribution.share > 0
        shares = [c.share for c in rec.because]
        assert shares == sorted(shares, reverse=True)
        assert sum(rec.leaning.values()) == pytest.approx(1.0, abs=1e-5)
        if alpha is not None:
            assert rec.leaning == {"als": 0.5, "content": 0.5}


def test_unexplained_results_rank_the_same(engine: Engine) -> None:
    explained = engine.recommend(USERS_A[1], n=4)
    bare = engine.recommend(USERS_A[1], n=4, explain_results=False)
    assert [(r.movie_id, r.score) for r in bare] == [(r.movie_id, r.score) for r in explained]
    assert all(r.because == [] for r in bare)
    assert all(r.because for r in explained)


def test_the_cost_estimate_grows_with_the_ratings_and_explanations(
    engine: Engine, blend_engine: Engine
) -> None:
    few = engine.recommend_cost(5, explain_results=False)
    many = engine.recommend_cost(500, explain_results=False)
    assert 1e-3 < few < many  # the ranking stage's model alone is about a millisecond
    ease = engine.arms[1].columns.size  # type: ignore[attr-defined]
    per_rating = 2 * engine.graph.k * 15e-9 + ease * 1e-9
    assert many - few == pytest.approx(495 * per_rating)
    assert engine.recommend_cost(5) == pytest.approx(1.5 * few)
    blend_few = blend_engine.recommend_cost(5, explain_results=False)
    assert blend_few < few  # no ranker: the linear blend's passes only
    assert blend_engine.recommend_cost(500, explain_results=False) - blend_few == pytest.approx(
        495 * blend_engine.graph.k * 15e-9
    )
    assert blend_engine.recommend_cost(5) == pytest.approx(2 * blend_few)


def test_filters_hold(engine: Engine) -> None:
    user = USERS_A[0]
    rated = engine.training_ratings(user)
    horror = engine.recommend(user, n=10, genres=["horror"])
    assert set(ids(horror)) == set(BLOCK_B)
    early = engine.recommend(user, n=10, year_range=(1991, 1994))
    assert set(ids(early)) == {1, 2, 3, 4} - set(rated)
    with_rated = engine.recommend(user, n=20, exclude_rated=False)
    assert set(rated) <= set(ids(with_rated))
    assert not set(rated) & set(ids(engine.recommend(user, n=20)))


def test_cold_start_users_get_popular_movies_of_the_asked_genres(engine: Engine) -> None:
    recs = engine.recommend(123_456, n=5, genres=["Animation"])
    assert all(r.source == "popularity" for r in recs)
    assert set(ids(recs)) <= set(BLOCK_A)
    rows = engine.movies.indices(ids(recs))
    assert engine.cold_scores[rows].tolist() == sorted(engine.cold_scores[rows], reverse=True)
    best = np.argsort(-engine.cold_scores[: len(BLOCK_A)], kind="stable")[:5]
    assert ids(recs) == engine.movies.ids[best].tolist()
    scores = [m.score for m in engine.popular(20)]
    assert scores == sorted(scores, reverse=True)
    assert [m.movie_id for m in engine.popular(20)] == engine.movies.ids[
        engine.popularity.best_rated
    ].tolist()


def test_without_a_ranker_the_ramp_leans_on_content_for_few_ratings(blend_engine: Engine) -> None:
    engine = blend_engine
    assert engine.ranker is None
    assert engine.ranking_stage == "disabled in the config (ranker.enabled = false)"
    ramped = engine.recommend(77_777, n=1, ratings={1: 5.0})
    assert ramped[0].source == "hybrid"
    settings = engine.settings
    assert settings.ramp > 0
    expected_alpha = settings.alpha * 1 / (1 + settings.ramp)
    rec = ramped[0]
    assert rec.score == pytest.approx(
        expected_alpha * rec.collab_score + (1 - expected_alpha) * rec.content_score, rel=1e-5
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n": 0}, "n"),
        ({"n": 101}, "n"),
        ({"n": 2.5}, "n"),
        ({"n": True}, "n"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"alpha": math.nan}, "alpha"),
        ({"alpha": math.inf}, "alpha"),
        ({"genres": ["Westerns"]}, "genres"),
        ({"year_range": (2000, 1990)}, "year_from"),
        ({"year_range": (99, None)}, "year_from"),
        ({"year_range": (None, 3000)}, "year_to"),
    ],
)
def test_bad_arguments_raise_typed_errors(engine: Engine, kwargs: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidParameter) as err:
        engine.recommend(USERS_A[0], **kwargs)
    assert err.value.parameter == field
    assert err.value.code == "INVALID_ARGUMENT"


def test_similar_excludes_the_movie_and_refuses_unknown_ones(engine: Engine) -> None:
    similar = engine.similar(11, n=5)
    assert 11 not in [m.movie_id for m in similar]
    assert len(similar) == 5
    assert {m.movie_id for m in similar[:3]} <= set(BLOCK_B)
    assert [m.score for m in similar] == sorted((m.score for m in similar), reverse=True)
    with pytest.raises(UnknownMovie) as err:
        engine.similar(424_242)
    assert err.value.code == "MOVIE_NOT_FOUND"


def test_similar_reads_the_graph_of_a_flat_index_as_a_search_would_answer(
    engine: Engine,
) -> None:
    k = engine.graph.k
    assert engine.index_spec.kind == "flat"
    assert engine.similar_from_graph(k)
    assert not engine.similar_from_graph(k + 1)
    for row in range(len(engine.movies)):
        movie = engine.movies.id_of(row)
        for n in (1, k):
            looked_up = engine.similar(movie, n)
            searched = engine._search_similar(row, n)
            assert [m.movie_id for m in looked_up] == [m.movie_id for m in searched]
            assert [m.score for m in looked_up] == pytest.approx([m.score for m in searched])
    beyond = engine.similar(engine.movies.id_of(0), k + 3)  # more than the graph holds
    assert len(beyond) == min(k + 3, len(engine.movies) - 1)
    assert [m.movie_id for m in beyond] == [m.movie_id for m in engine._search_similar(0, k + 3)]


def test_search_finds_a_described_movie(engine: Engine) -> None:
    hits = engine.search("a clownfish searching the ocean for his son", n=3)
    assert hits[0].movie_id == 2
    for text in ("", "   "):
        with pytest.raises(InvalidParameter, match="must not be empty"):
            engine.search(text)
    with pytest.raises(InvalidParameter, match="at most 1000 characters"):
        engine.search("x" * 1001)


def test_a_batch_of_searches_answers_each_as_a_lone_search(engine: Engine) -> None:
    queries = [
        "a clownfish searching the ocean for his son",
        "  toys that come alive  ",
        "a vampire in a village",
        "a clownfish searching the ocean for his son",  # repeated within the batch
        "zombies in a shopping mall and a long rambling description of the survivors' plans",
    ]
    for n in (1, 5, 20):
        batched = engine.search_many(queries, n)
        assert len(batched) == len(queries)
        for text, hits in zip(queries, batched, strict=True):
            alone = engine.search(text, n)
            assert [h.movie_id for h in hits] == [h.movie_id for h in alone]
            assert [h.score for h in hits] == pytest.approx([h.score for h in alone], abs=1e-5)
    assert engine.search_many([], 3) == []
    with pytest.raises(InvalidParameter, match="must not be empty"):
        engine.search_many(["fine", " "], 3)
    with pytest.raises(InvalidParameter, match="from 1 to 100"):
        engine.search_many(["fine"], 0)


def test_fold_in_ranks_the_users_own_block_first(engine: Engine) -> None:
    user = USERS_A[2]
    history = engine.history(user)
    fold = engine.als.fold_in(history.rows, history.ratings)
    assert fold.factor.shape == (CONFIG.arms.als.factors,)
    scores = engine.als.score(history).values
    # the folded-in factor ranks this user's own block first, as training did
    assert set(engine.movies.ids[np.argsort(-scores)[:10]].tolist()) == set(BLOCK_A)


def test_hybrid_settings_come_from_the_manifest(engine: Engine) -> None:
    assert engine.settings == HybridSettings(**CONFIG.hybrid.model_dump())
    constant = normalise(np.ones(4, dtype=np.float32))
    assert constant.tolist() == [0.0, 0.0, 0.0, 0.0]


def test_a_rating_made_since_training_is_the_users_newest(engine: Engine) -> None:
    user = USERS_A[0]
    trained = engine.history(user)
    ratings = engine.training_ratings(user)
    first = next(iter(ratings))
    changed = {**ratings, first: 0.5, 15: 4.0}  # one rating changed, one new
    now = engine.history(user, changed)
    times = dict(zip(engine.movies.ids[now.rows].tolist(), now.times.tolist(), strict=True))
    before = dict(
        zip(engine.movies.ids[trained.rows].tolist(), trained.times.tolist(), strict=True)
    )
    assert times[15] == times[first] == engine.catalog_now  # both count as made now
    assert all(times[m] == before[m] for m in ratings if m != first)  # the rest keep theirs
    newest = {engine.movies.ids[r] for r, k in zip(now.rows, now.recency, strict=True) if k == 0}
    assert newest == {15, first}
    assert now.now == engine.catalog_now >= trained.now
    unknown = engine.history(424_242, {1: 5.0})
    assert (unknown.size, unknown.now) == (1, engine.catalog_now)


def timed(engine: Engine, **kwargs: object) -> tuple[list[Recommendation], set[tuple[str, str]]]:
    """``engine.recommend(7, **kwargs)`` with a stage timer; the answer and the stages heard."""
    heard: list[tuple[str, str, float]] = []
    engine.stage_timer = lambda stage, arm, seconds: heard.append((stage, arm, seconds))
    try:
        recs = engine.recommend(7, n=5, **kwargs)  # type: ignore[arg-type]
    finally:
        engine.stage_timer = None
    assert all(seconds >= 0 for _, _, seconds in heard)
    return recs, {(stage, arm) for stage, arm, _ in heard}


def test_the_stage_timer_hears_each_arm_and_the_ranking_stage(engine: Engine) -> None:
    assert engine.ranker is not None
    recs, stages = timed(engine)
    arms = {("arm", arm.name) for arm in engine.arms}
    assert stages == arms | {("rank", "-"), ("explain", "-")}
    assert recs == engine.recommend(7, n=5)  # timing changes nothing


def test_the_stage_timer_hears_the_blend(blend_engine: Engine) -> None:
    recs, stages = timed(blend_engine, explain_results=False)
    assert stages == {("arm", "als"), ("arm", "content"), ("blend", "-")}
    assert recs == blend_engine.recommend(7, n=5, explain_results=False)


def test_an_engine_recommends_the_same_on_compiled_trees_as_on_lightgbm(
    engine: Engine,
) -> None:
    assert engine.ranker is not None
    assert engine.ranker.trees.backend == "compiled"  # the default
    reference = Engine.load(engine.directory, ranker_backend="lightgbm")
    assert reference.ranker is not None
    assert reference.ranker.trees.backend == "lightgbm"
    for user in engine.users.ids[:20].tolist():
        for diversity in (0.0, 0.5):
            got = engine.recommend(user, 8, diversity=diversity)
            expected = reference.recommend(user, 8, diversity=diversity)
            assert ids(got) == ids(expected)  # the same movies in the same order
            for a, b in zip(got, expected, strict=True):  # scores to the last few bits
                assert a.score == pytest.approx(b.score, abs=1e-9)
                assert [(c.movie_id, c.arm) for c in a.because] == [
                    (c.movie_id, c.arm) for c in b.because
                ]
                assert [c.share for c in a.because] == pytest.approx(
                    [c.share for c in b.because], abs=1e-9
                )
