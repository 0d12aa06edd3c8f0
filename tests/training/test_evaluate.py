"""Metrics with known answers, the temporal split, and the evaluation end to end (tiny data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_gql.artifacts import ArtifactDir
from recsys_gql.recsys.blend import (
    normalise,
    normalise_rows,
    ramped_alpha,
    ramped_prior_weight,
)
from recsys_gql.recsys.content import SentenceEncoder
from recsys_gql.recsys.engine import Engine
from tests.conftest import write_tiny_movielens
from training.config import EvalConfig, TrainConfig
from training.evaluate import bootstrap
from training.experiment import record_in_manifest, run_evaluation
from training.metrics import summarise, temporal_split, top_k_excluding
from training.pipeline import train
from training.report import write_report
from training.text import tags_until_cutoff


def test_ranking_metrics_known_answers() -> None:
    relevant = np.zeros((2, 30), dtype=bool)
    relevant[0, [0, 2]] = True  # user 0: items 0 and 2 relevant
    relevant[1, [25]] = True  # user 1: item 25 relevant, ranked 11th
    top = np.array([list(range(20)), [*range(10), 25, *range(11, 20)]])
    popularity = np.arange(30)
    m = summarise(top, relevant, popularity)
    ideal0 = 1 + 1 / np.log2(3)
    ndcg0 = (1 + 1 / np.log2(4)) / ideal0
    assert m.ndcg_at_10 == pytest.approx((ndcg0 + 0.0) / 2)
    assert m.precision_at_10 == pytest.approx((2 / 10 + 0) / 2)
    assert m.recall_at_20 == pytest.approx((1.0 + 1.0) / 2)
    assert m.map_at_10 == pytest.approx(((1 / 1 + 2 / 3) / 2 + 0) / 2)
    assert m.coverage_at_10 == pytest.approx(10 / 30)
    assert m.mean_popularity_at_10 == pytest.approx(4.5)


def test_top_k_excludes_training_items() -> None:
    scores = np.array([[5.0, 4.0, 3.0, 2.0, 1.0]])
    exclude = np.array([[True, False, True, False, False]])
    assert top_k_excluding(scores, exclude, 2).tolist() == [[1, 3]]


def test_temporal_split_holds_out_each_users_latest_share() -> None:
    ratings = pd.DataFrame(
        {
            "userId": [1] * 10 + [2] * 3 + [3],
            "movieId": [*list(range(10)), 0, 1, 2, 5],
            "rating": np.float32(4.0),
            "timestamp": [*list(range(100, 90, -1)), 5, 7, 6, 1],
        }
    )
    train_part, test_part = temporal_split(ratings, 0.2)
    held = test_part.groupby("userId")["movieId"].apply(set).to_dict()
    assert held == {1: {0, 1}, 2: {1}}  # user 1's two latest; user 2's latest; user 3 keeps one
    assert len(train_part) + len(test_part) == len(ratings)
    latest_train = train_part.groupby("userId")["timestamp"].max()
    earliest_test = test_part.groupby("userId")["timestamp"].min()
    assert (latest_train.loc[earliest_test.index] < earliest_test).all()


def test_batch_normalisation_matches_the_engines() -> None:
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(3, 12)).astype(np.float32)
    exclude = rng.random((3, 12)) < 0.3
    batch = normalise_rows(raw, exclude)
    for row in range(3):
        keep = ~exclude[row]
        np.testing.assert_allclose(batch[row, keep], normalise(raw[row, keep]), rtol=1e-6)
        assert (batch[row, exclude[row]] == 0).all()
    assert ramped_alpha(0.8, 0, 10.0) == 0.0
    assert ramped_alpha(0.8, 10, 10.0) == pytest.approx(0.4)
    assert ramped_alpha(0.8, 5, 0.0) == 0.8
    assert ramped_prior_weight(0.2, 0, 10.0) == pytest.approx(0.2)
    assert ramped_prior_weight(0.2, 10, 10.0) == pytest.approx(0.1)
    assert ramped_prior_weight(0.2, 90, 10.0) == pytest.approx(0.02)
    assert ramped_prior_weight(0.2, 90, 0.0) == 0.2


def test_tags_after_their_authors_cut_off_are_left_out() -> None:
    train_part = pd.DataFrame({"userId": [1, 1, 2], "movieId": [1, 2, 1],
                               "rating": np.float32(4.0), "timestamp": [10, 20, 15]})  # fmt: skip
    tags = pd.DataFrame(
        {
            "userId": [1, 1, 2, 2, 3],
            "movieId": [5, 6, 5, 6, 7],
            "tag": ["before", "after", "at cut-off", "after", "no ratings"],
            "timestamp": [19, 21, 15, 16, 99],
        }
    )
    kept = tags_until_cutoff(tags, train_part)
    assert kept is not None
    assert kept["tag"].tolist() == ["before", "at cut-off", "no ratings"]
    assert tags_until_cutoff(None, train_part) is None


def test_bootstrap_intervals_are_paired_over_users() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(300)
    per_user = {
        "a": {"ndcg_at_10": base * 1.2},
        "b": {"ndcg_at_10": base},
        "c": {"ndcg_at_10": rng.random(300)},
    }
    out = bootstrap(per_user, ["a", "c"], ["ndcg_at_10"], against="b", resamples=500, seed=1)
    a = out["a"]["ndcg_at_10"]
    assert a["ratio"] == pytest.approx(1.2)
    # every resample sees the same users for both models, so a constant ratio has no spread
    assert a["ratio_ci95"] == pytest.approx([1.2, 1.2])
    low, high = a["ci95"]
    assert low < a["mean"] < high
    c = out["c"]["ndcg_at_10"]
    assert c["ratio_ci95"][0] < c["ratio"] < c["ratio_ci95"][1]
    assert out["users"] == 300


def test_evaluation_end_to_end_on_tiny_data(
    tmp_path: Path, sentence_encoder: SentenceEncoder
) -> None:
    data = write_tiny_movielens(tmp_path / "data")
    config = TrainConfig.model_validate(
        {"arms": {"als": {"factors": 2, "regularization": 1.0}}, "ranker": {"min_users": 5}}
    )
    train(
        data, tmp_path / "artifacts", config, cache_dir=None,
        encoder_factory=lambda _: sentence_encoder, report=lambda _: None, show_progress=False,
    )  # fmt: skip
    grid = EvalConfig(
        alphas=[0.0, 0.5, 1.0], ramps=[0.0, 5.0], popularity_weights=[0.0, 0.1],
        ease_lambdas=[10.0], cold_start_sizes=[0, 1, 2], bootstrap_resamples=200,
    )  # fmt: skip
    current = tmp_path / "artifacts" / "current"
    results = run_evaluation(
        data, current, config, grid, cache_dir=tmp_path / "cache",
        encoder_factory=lambda _: sentence_encoder, report=lambda _: None,
    )  # fmt: skip
    assert set(results["test"]) == {
        "popularity", "tfidf_content", "arm_als", "arm_ease", "arm_content", "arm_popularity",
        "content_prior", "blend_fixed", "blend", "ease_r", "default",
    }  # fmt: skip
    for metrics in results["test"].values():
        assert 0.0 <= metrics["ndcg_at_10"] <= 1.0
        assert metrics["users"] == 40
    # with two clean tastes, ALS ranks the held-out movies of the user's taste first
    test = results["test"]
    assert test["arm_als"]["ndcg_at_10"] > test["popularity"]["ndcg_at_10"]
    assert results["chosen"]["alpha"] in grid.alphas
    assert results["chosen"]["ranker"]["rounds"] >= 1
    assert len(results["tuning"]["blend"]) == 3 * 2 * 2
    assert [row["ratings"] for row in results["cold_start"]] == [0.0, 1.0, 2.0]
    assert set(results["cold_start"][1]) >= {"default", "fixed_alpha", "als_only", "ease_only"}
    intervals = results["intervals"]
    assert intervals["default"]["ndcg_at_10"]["mean"] == pytest.approx(
        test["default"]["ndcg_at_10"]
    )
    assert intervals["ease_r"]["ndcg_at_10"]["ratio"] == pytest.approx(1.0)
    activity = results["by_activity"]
    assert sum(activity["users"]) == 40
    assert set(activity["ndcg_at_10"]) == set(test)
    assert set(results["validation"]) == {"ranker", "ease_r"}
    controls = results["list_controls"]
    for curve in (controls["diversity_validation"], controls["diversity_test"]):
        assert [row["diversity"] for row in curve] == [k / 10 for k in range(11)]
        assert curve[-1]["ild_at_10"] > curve[0]["ild_at_10"]  # MMR spreads the lists
    assert controls["diversity_default"]["diversity"] in [k / 10 for k in range(11)]
    assert [row["beta"] for row in controls["hides"]] == [0.0, 0.1, 0.25, 0.5, 1.0]

    write_report(results, tmp_path / "reports")
    text = (tmp_path / "reports" / "evaluation.md").read_text()
    assert "| **Ranking stage (default)** |" in text
    assert "95% bootstrap intervals" in text
    assert "| 2 | " in text  # the cold-start row for two ratings
    assert json.loads((tmp_path / "reports" / "evaluation.json").read_text())["run_id"]
    assert (tmp_path / "reports" / "ndcg_by_activity.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "reports" / "diversity_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Diversity: NDCG@10 against intra-list diversity" in text
    assert "**(default)**" in text

    record_in_manifest(current, results)
    run = ArtifactDir.open(current)  # still verifies: only the manifest's metrics changed
    assert run.manifest.metrics["chosen"]["alpha"] == results["chosen"]["alpha"]
    engine = Engine(run, encoder=sentence_encoder)
    assert engine.settings.alpha == results["chosen"]["alpha"]
    assert engine.settings.ramp == results["chosen"]["ramp"]

    # At scale: a seeded sample of users, and EASE^R skipped above its catalog limit.
    bounded = grid.model_copy(update={"max_users": 10, "ease_max_items": 19})
    sampled = run_evaluation(
        data, current, config, bounded, cache_dir=tmp_path / "cache",
        encoder_factory=lambda _: sentence_encoder, report=lambda _: None,
    )  # fmt: skip
    assert "ease_r" not in sampled["test"]
    assert "ease_max_items" in sampled["skipped"]["ease_r"]
    assert sampled["intervals"] == {}
    assert {m["users"] for m in sampled["test"].values()} == {10}
    assert sampled["protocol"]["test_users"] == 10
    write_report(sampled, tmp_path / "bounded")
    assert "EASE^R was skipped" in (tmp_path / "bounded" / "evaluation.md").read_text()
