"""Metrics with known answers, the temporal split, and the evaluation end to end (tiny data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_gql.artifacts import ArtifactDir
from recsys_gql.recsys.content import SentenceEncoder
from recsys_gql.recsys.engine import Engine
from recsys_gql.recsys.hybrid import (
    normalise,
    normalise_rows,
    ramped_alpha,
    ramped_prior_weight,
)
from tests.conftest import write_tiny_movielens
from training.config import EvalConfig, TrainConfig
from training.experiment import record_in_manifest, run_evaluation, write_report
from training.metrics import ranking_metrics, temporal_split, top_k_excluding
from training.pipeline import train


def test_ranking_metrics_known_answers() -> None:
    relevant = np.zeros((2, 30), dtype=bool)
    relevant[0, [0, 2]] = True  # user 0: items 0 and 2 relevant
    relevant[1, [25]] = True  # user 1: item 25 relevant, ranked 11th
    top = np.array([list(range(20)), [*range(10), 25, *range(11, 20)]])
    popularity = np.arange(30)
    m = ranking_metrics(top, relevant, popularity)
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


def test_evaluation_end_to_end_on_tiny_data(
    tmp_path: Path, sentence_encoder: SentenceEncoder
) -> None:
    data = write_tiny_movielens(tmp_path / "data")
    config = TrainConfig.model_validate({"als": {"factors": 2, "regularization": 1.0}})
    train(
        data, tmp_path / "artifacts", config, cache_dir=None,
        encoder_factory=lambda _: sentence_encoder, report=lambda _: None, show_progress=False,
    )  # fmt: skip
    grid = EvalConfig(
        alphas=[0.0, 0.5, 1.0], ramps=[0.0, 5.0], popularity_weights=[0.0, 0.1],
        als_factors=[2], als_regularization=[1.0], als_alpha=[1.0], als_weighting=["rating"],
        ease_lambdas=[10.0], cold_start_sizes=[1, 2],
    )  # fmt: skip
    current = tmp_path / "artifacts" / "current"
    results = run_evaluation(data, current, config, grid, report=lambda _: None)
    assert set(results["test"]) == {
        "popularity", "als_only", "content_only", "content_prior", "tfidf_content", "ease_r",
        "hybrid",
    }  # fmt: skip
    for metrics in results["test"].values():
        assert 0.0 <= metrics["ndcg_at_10"] <= 1.0
        assert metrics["users"] == 40
    # with two clean tastes, ALS ranks the held-out movies of the user's taste first
    test = results["test"]
    assert test["als_only"]["ndcg_at_10"] > test["popularity"]["ndcg_at_10"]
    assert results["chosen"]["alpha"] in grid.alphas
    assert len(results["tuning"]["blend"]) == 3 * 2 * 2
    assert [row["ratings"] for row in results["cold_start"]] == [1.0, 2.0]

    write_report(results, tmp_path / "reports")
    text = (tmp_path / "reports" / "evaluation.md").read_text()
    assert "| **Hybrid (default)** |" in text
    assert json.loads((tmp_path / "reports" / "evaluation.json").read_text())["run_id"]
    assert (tmp_path / "reports" / "ndcg_vs_alpha.png").read_bytes()[:4] == b"\x89PNG"

    record_in_manifest(current, results)
    run = ArtifactDir.open(current)  # still verifies: only the manifest's metrics changed
    assert run.manifest.metrics["chosen"]["alpha"] == results["chosen"]["alpha"]
    engine = Engine(run, encoder=sentence_encoder)
    assert engine.settings.alpha == results["chosen"]["alpha"]
    assert engine.settings.ramp == results["chosen"]["ramp"]

    # At scale: a seeded sample of users, and EASE^R skipped above its catalog limit.
    bounded = grid.model_copy(update={"max_users": 10, "ease_max_items": 19})
    sampled = run_evaluation(data, current, config, bounded, report=lambda _: None)
    assert "ease_r" not in sampled["test"]
    assert "ease_max_items" in sampled["skipped"]["ease_r"]
    assert {m["users"] for m in sampled["test"].values()} == {10}
    assert sampled["protocol"]["test_users"] == 10
    again = run_evaluation(data, current, config, bounded, report=lambda _: None)
    assert again["test"] == sampled["test"]  # the sample is seeded
    write_report(sampled, tmp_path / "bounded")
    assert "EASE^R |" not in (tmp_path / "bounded" / "evaluation.md").read_text()
