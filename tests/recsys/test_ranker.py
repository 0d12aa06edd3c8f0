"""The ranking stage: training examples, the model artifact's round trip and verification, the
genre guard, and explanations built from arm contributions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recsys_gql.artifacts import (
    ArtifactDir,
    ArtifactWriter,
    DataFingerprint,
    RankerRecord,
    verify,
)
from recsys_gql.errors import ArtifactError
from recsys_gql.recsys import ann
from recsys_gql.recsys.arm import Catalog, History, Probe, TrainingSet
from recsys_gql.recsys.explain import ArmPart, explain
from recsys_gql.recsys.features import CONTEXT_FEATURES, feature_arms, feature_names
from recsys_gql.recsys.ranker import GenreGuard, Ranker
from recsys_gql.recsys.vocab import IdVocab
from tests.recsys.test_arms import arm_sections_all, block_graph
from training.config import RankerConfig
from training.ranker import Examples, examples, histories, train_ranker

T0 = 1_500_000_000.0


def planted_examples(seed: int = 0, groups: int = 120, size: int = 30) -> Examples:
    """Groups where feature 0 decides the label and feature 1 is noise."""
    rng = np.random.default_rng(seed)
    blocks, labels = [], []
    for _ in range(groups):
        x = rng.random((size, 2)).astype(np.float32)
        blocks.append(x)
        labels.append((x[:, 0] > 0.8).astype(np.float32))
    return Examples(np.vstack(blocks), np.concatenate(labels), [size] * groups,
                    list(range(groups)))  # fmt: skip


CONFIG = RankerConfig(min_data_in_leaf=5, max_rounds=60, early_stopping_rounds=10)


def test_a_trained_ranker_learns_the_planted_feature_and_reports_its_training() -> None:
    trained = train_ranker(planted_examples(), ["signal", "noise"], CONFIG, seed=1)
    details = trained.details
    assert 1 <= details["rounds"] <= CONFIG.max_rounds
    assert details["groups"] == 120
    assert details["gain_share"]["signal"] > 0.9
    ranker = Ranker.from_string(trained.model, ["signal", "noise"], {"signal": "a", "noise": "b"})
    probe = np.array([[0.95, 0.1], [0.5, 0.9], [0.1, 0.5]], dtype=np.float32)
    scores = ranker.predict(probe)
    assert scores[0] > scores[1]
    assert scores[0] > scores[2]
    reference = np.median(probe, axis=0).astype(np.float32)
    shares = ranker.arm_leaning(probe, reference)
    assert shares.sum(axis=1)[0] == pytest.approx(1.0)
    assert ranker.arms == ["a", "b"]
    assert shares[0, 0] > 0.9  # the top row is up for its signal, not for the noise
    # a row no better than the reference on any arm owes nothing to any arm
    assert ranker.arm_leaning(reference[None, :], reference).tolist() == [[0.0, 0.0]]


def write_ranker_run(directory: Path, model: str, features: list[str]) -> None:
    writer = ArtifactWriter(directory)
    writer.save_text("ranker.txt", model)
    writer.finalize(
        run_id="r", libraries={}, config={}, counts={}, models={},
        data=DataFingerprint(sha256="x", files={}), content_index=ann.IndexSpec(),
        arms=arm_sections_all(),
        ranker=RankerRecord(
            status="trained", file="ranker.txt", features=features,
            feature_arms=dict.fromkeys(features, "a"),
            details={"genre_guard": {"weight": 0.4, "ramp": 2.0}},
        ),
    )  # fmt: skip


def test_the_model_file_round_trips_and_is_verified_like_every_artifact(tmp_path: Path) -> None:
    names = ["signal", "noise"]
    trained = train_ranker(planted_examples(), names, CONFIG, seed=1)
    write_ranker_run(tmp_path, trained.model, names)
    run = ArtifactDir.open(tmp_path)
    assert run.manifest.files["ranker.txt"].kind == "text"
    loaded = Ranker.from_record(run.text("ranker.txt"), run.manifest.ranker)
    original = Ranker.from_string(trained.model, names, dict.fromkeys(names, "a"))
    rows = np.random.default_rng(3).random((50, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(rows), original.predict(rows))
    assert loaded.guard == GenreGuard(weight=0.4, ramp=2.0)
    # a model whose features are not the manifest's is refused, naming both
    with pytest.raises(ArtifactError, match=r"features \['signal', 'noise'\] are not the manif"):
        Ranker.from_string(trained.model, ["noise", "signal"], {})
    # a changed model file fails verification by name
    (tmp_path / "ranker.txt").write_text(trained.model.replace("signal", "sygnal"))
    with pytest.raises(ArtifactError, match=r"ranker\.txt is \d+ bytes|ranker\.txt does not match"):
        verify(tmp_path)


def test_the_genre_guard_fades_with_the_number_of_ratings() -> None:
    guard = GenreGuard(weight=0.5, ramp=5.0)
    assert guard.at(0) == 0.5
    assert guard.at(5) == pytest.approx(0.25)
    assert guard.at(95) == pytest.approx(0.025)
    assert GenreGuard(weight=0.0).at(1) == 0.0


def test_leaning_counts_the_guard_as_context() -> None:
    names = ["signal", "genre_affinity"]
    trained = train_ranker(planted_examples(), names, CONFIG, seed=1)
    ranker = Ranker.from_string(
        trained.model, names, {"signal": "ease", "genre_affinity": "context"}
    )
    rows = np.array([[0.95, 0.3]], dtype=np.float32)
    reference = np.array([0.5, 0.5], dtype=np.float32)
    plain = ranker.arm_leaning(rows, reference)
    guarded = ranker.leaning(rows, reference, 0.25)
    np.testing.assert_allclose(guarded.sum(axis=1), 1.0)
    context = ranker.arms.index("context")
    ease = ranker.arms.index("ease")
    assert guarded[0, ease] == pytest.approx(0.75 * plain[0, ease])
    assert guarded[0, context] == pytest.approx(0.75 * plain[0, context] + 0.25)
    np.testing.assert_array_equal(ranker.genre_affinity(rows), np.float32([0.3]))


def test_explanations_weigh_each_arms_shares_by_how_much_the_result_owes_it() -> None:
    rated = np.array([11, 22, 33])
    als = ArmPart("als", np.array([0.5, 0.0]), np.array([[2.0, 2.0, 0.0], [1.0, 0.0, 0.0]]))
    ease = ArmPart("ease", np.array([0.25, 1.0]), np.array([[0.0, 0.0, 1.0], [0.0, 3.0, 1.0]]))
    out = explain(rated, [als, ease], 2, limit=2)
    # target 0: als gives 11 and 22 a quarter each, ease gives 33 a quarter
    assert [(c.movie_id, c.arm, c.share) for c in out[0]] == [(11, "als", 0.25), (22, "als", 0.25)]
    # target 1: als owes nothing; ease splits 3:1 between 22 and 33
    assert [(c.movie_id, c.arm, c.share) for c in out[1]] == [
        (22, "ease", 0.75),
        (33, "ease", 0.25),
    ]
    assert explain(rated, [], 2) == [[], []]


def tiny_training_set() -> TrainingSet:
    """Two blocks of ten movies; users 0-19 rate block A, 20-39 block B, one a day."""
    import scipy.sparse as sp

    rng = np.random.default_rng(5)
    rows, cols, times = [], [], []
    for user in range(40):
        block = 0 if user < 20 else 10
        picks = rng.choice(10, 6, replace=False) + block
        rows += [user] * 6
        cols += picks.tolist()
        times += [T0 + 86_400.0 * (user + k) for k in range(6)]
    ratings = sp.csr_matrix((np.full(len(rows), 5.0, np.float32), (rows, cols)), shape=(40, 20))
    stamps = sp.csr_matrix((np.array(times), (rows, cols)), shape=(40, 20))
    genres = np.zeros((20, 2), np.uint8)
    genres[:10, 0] = genres[10:, 1] = 1
    catalog = Catalog(
        IdVocab(np.arange(1, 21)), genres, np.full(20, 2000, np.int16), block_graph(20)
    )
    return TrainingSet(ratings, stamps, catalog)


def test_histories_add_first_and_latest_cuts() -> None:
    data = tiny_training_set()
    full, *cuts = histories(data, 3, [2, 6, 10])
    assert full.size == 6
    assert [c.size for c in cuts] == [2, 2]  # 6 and 10 are not shorter than the history
    order = np.argsort(full.times)
    assert set(cuts[0].rows) == set(full.rows[order[:2]])
    assert set(cuts[1].rows) == set(full.rows[order[-2:]])
    # each cut's time is its own latest rating: the first cut sees the catalog as it was then
    assert cuts[0].now == cuts[0].times.max() < full.now
    assert cuts[1].now == full.now
    assert isinstance(cuts[0], History)


def test_examples_label_liked_candidates_and_sample_the_rest() -> None:
    from recsys_gql.recsys.arms.als import AlsArm, AlsConfig
    from recsys_gql.recsys.arms.content import ContentArm, ContentConfig
    from recsys_gql.recsys.arms.popularity import PopularityArm, PopularityConfig

    data = tiny_training_set()
    arms = [
        AlsArm.fit(data, AlsConfig(factors=2, iterations=5)),
        ContentArm.fit(data, ContentConfig()),
        PopularityArm.fit(data, PopularityConfig()),
    ]
    users = np.array([0, 25])
    liked = [np.setdiff1d(np.arange(10), data.history(0).rows),
             np.setdiff1d(np.arange(10, 20), data.history(25).rows)]  # fmt: skip
    probe = Probe(users, liked)
    full = examples(arms, data, probe, [])
    assert len(full.groups) == 2
    assert full.matrix.shape == (sum(full.groups), len(feature_names(arms)))
    assert full.labels.sum() == sum(x.size for x in liked)  # every liked movie is a candidate
    sampled = examples(arms, data, probe, [1], negatives=3, seed=0)
    assert len(sampled.groups) == 6  # full, first 1 and latest 1 for each user
    starts = np.cumsum([0, *sampled.groups])
    for g in range(len(sampled.groups)):
        labels = sampled.labels[starts[g] : starts[g + 1]]
        assert (labels == 0).sum() <= 3
    names = feature_names(arms)
    assert names[-len(CONTEXT_FEATURES) :] == list(CONTEXT_FEATURES)
    assert feature_arms(arms)["als_rank"] == "als"
    assert json.loads(json.dumps(feature_arms(arms))) == feature_arms(arms)  # manifest-ready
