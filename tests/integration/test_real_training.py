"""The data step and training on the real ml-latest-small, through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys_gql.artifacts import ArtifactDir
from recsys_gql.cli import main
from recsys_gql.recsys.vocab import IdVocab
from tests.conftest import RealRun

pytestmark = pytest.mark.integration


def test_fetch_then_train_on_ml_latest_small(real_run: RealRun, real_data_source: Path) -> None:
    assert (real_run.raw / "overviews.csv").is_file()
    run = ArtifactDir.open(real_run.current)
    manifest = run.manifest
    assert manifest.counts == {
        "movies": 9742,
        "users": 610,
        "ratings": 100_836,
        "embedding_dim": 384,
        "genres": 19,
    }
    assert {name: r.status for name, r in manifest.arms.items()} == dict.fromkeys(
        ("als", "ease", "content", "popularity"), "fitted"
    )
    assert manifest.ranker.status == "trained"
    embeddings = run.array("embeddings.npy")
    assert embeddings.shape == (9742, 384)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-4)
    assert run.array("item_factors.npy").shape[0] == 9742
    assert run.array("user_rating_times.npy").shape == (100_836,)
    assert manifest.data.files["ratings.csv"] == (
        "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646"
    )
    movies = IdVocab(run.array("movie_ids.npy"))
    # Toy Story's nearest plot neighbours include another Toy Story
    toy_story, toy_story_2 = movies.index(1), movies.index(3114)
    assert toy_story is not None
    assert toy_story_2 is not None
    nearest = np.argsort(-(embeddings @ embeddings[toy_story]))[1:6]
    assert toy_story_2 in nearest.tolist()


def test_a_second_train_and_fetch_reuse_what_exists(
    real_run: RealRun, real_data_source: Path
) -> None:
    before = ArtifactDir.open(real_run.current).manifest.run_id
    assert main(["train", "--if-stale", "--quiet"]) == 0
    assert ArtifactDir.open(real_run.current).manifest.run_id == before
    assert main(["data", "fetch", "--source", str(real_data_source)]) == 0
