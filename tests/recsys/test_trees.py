"""The ranking stage's trees compiled to native code: LightGBM's scores exactly, and LightGBM
itself (with the reason) whenever the compiled model cannot be trusted."""

from __future__ import annotations

import logging
from typing import Any

import lightgbm
import numpy as np
import pytest

from recsys_gql.recsys.trees import ZERO, load_trees, probe_rows


def trained(seed: int, flip: bool = False) -> tuple[Any, str]:
    """A small regression forest over 5 features, one of them often missing and one often
    exactly zero or tiny, so that splits send missing values and zeros their own ways."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((600, 5)).astype(np.float32)
    x[rng.random(600) < 0.3, 2] = np.nan
    x[rng.random(600) < 0.3, 3] = 0.0
    y = 2.0 * x[:, 0] - np.nan_to_num(x[:, 2], nan=3.0) + (x[:, 3] == 0) + rng.normal(0, 0.1, 600)
    params = {"objective": "regression", "num_leaves": 15, "min_data_in_leaf": 5, "verbose": -1,
              "seed": seed}  # fmt: skip
    booster = lightgbm.train(params, lightgbm.Dataset(x, -y if flip else y), num_boost_round=40)
    return booster, booster.model_to_string()


def hard_rows(seed: int) -> np.ndarray:
    """Random rows with missing values, zeros and values LightGBM reads as zero."""
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((2000, 5)).astype(np.float32)
    rows[rng.random(rows.shape) < 0.1] = np.nan
    rows[rng.random(rows.shape) < 0.1] = 0.0
    rows[rng.random(rows.shape) < 0.05] = np.float32(ZERO / 10)
    rows[rng.random(rows.shape) < 0.05] = -np.float32(ZERO)
    return rows


def test_compiled_trees_score_every_row_as_lightgbm_does() -> None:
    booster, text = trained(seed=3)
    trees = load_trees(booster, text, "compiled")
    assert (trees.backend, trees.note) == ("compiled", None)
    for rows in (hard_rows(5), probe_rows(booster, seed=9)):
        expected = booster.predict(rows, num_threads=1)
        np.testing.assert_allclose(trees.predict(rows), expected, rtol=0, atol=1e-9)
    assert trees.predict(np.zeros((0, 5), np.float32)).shape == (0,)


def test_the_probe_holds_the_models_own_thresholds_and_missing_values() -> None:
    booster, _ = trained(seed=3)
    probe = probe_rows(booster)
    assert probe.shape == (512, 5)
    assert probe.dtype == np.float32
    splits = booster.trees_to_dataframe().dropna(subset=["threshold"])
    for feature, group in splits.groupby("split_feature"):
        column = probe[:, booster.feature_name().index(feature)]
        thresholds = group["threshold"].to_numpy()
        within = thresholds[np.abs(thresholds) < np.finfo(np.float32).max].astype(np.float32)
        assert np.isin(within, column).any()
        assert np.isnan(column).any()
        assert (column == 0).any()


def test_a_model_that_does_not_compile_is_served_by_lightgbm_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    booster, _ = trained(seed=3)
    with caplog.at_level(logging.WARNING, logger="recsys_gql.recsys.trees"):
        trees = load_trees(booster, "tree\nversion=v4\nnot a model", "compiled")
    assert trees.backend == "lightgbm"
    assert trees.note is not None
    assert trees.note.startswith("the model did not compile")
    assert "ranking with LightGBM's predict instead" in caplog.text
    rows = hard_rows(1)
    np.testing.assert_array_equal(trees.predict(rows), booster.predict(rows, num_threads=1))


def test_compiled_scores_that_differ_from_lightgbms_are_not_used() -> None:
    booster, _ = trained(seed=3)
    _, other = trained(seed=3, flip=True)  # compiles, but is another model
    trees = load_trees(booster, other, "compiled")
    assert trees.backend == "lightgbm"
    assert trees.note is not None
    assert "differ from LightGBM's" in trees.note
    rows = hard_rows(2)
    np.testing.assert_array_equal(trees.predict(rows), booster.predict(rows, num_threads=1))


def test_lightgbm_asked_for_is_lightgbm_without_a_note() -> None:
    booster, text = trained(seed=3)
    trees = load_trees(booster, text, "lightgbm")
    assert (trees.backend, trees.note) == ("lightgbm", None)
