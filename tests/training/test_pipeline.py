"""The training pipeline end to end on the tiny data set, staleness, config and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys_gql.artifacts import ArtifactDir
from recsys_gql.cli import main
from recsys_gql.errors import ConfigError
from recsys_gql.recsys.arms.als import AlsArm
from recsys_gql.recsys.arms.ease import EaseArm
from recsys_gql.recsys.content import SentenceEncoder, read_index
from recsys_gql.recsys.engine import Engine
from tests.conftest import BLOCK_A
from training.config import TrainConfig
from training.pipeline import TrainResult, is_fresh, train

SMALL = TrainConfig.model_validate(
    {"arms": {"als": {"factors": 2, "iterations": 10, "regularization": 1.0}}}
)


def run(
    data: Path,
    out: Path,
    encoder: SentenceEncoder,
    config: TrainConfig = SMALL,
) -> TrainResult:
    return train(
        data,
        out,
        config,
        cache_dir=None,
        encoder_factory=lambda _: encoder,
        report=lambda _: None,
        show_progress=False,
    )


def test_a_run_writes_verified_artifacts(
    tiny_movielens: Path, tmp_path: Path, sentence_encoder: SentenceEncoder
) -> None:
    result = run(tiny_movielens, tmp_path / "artifacts", sentence_encoder)
    run_dir = ArtifactDir.open(tmp_path / "artifacts" / "current")
    assert run_dir.directory == result.run_dir.resolve()
    manifest = run_dir.manifest
    assert manifest.counts["movies"] == 20
    assert manifest.counts["users"] == 40
    assert manifest.counts["embedding_dim"] == 384
    assert manifest.config == SMALL.model_dump(mode="json")
    assert set(manifest.stages) >= {
        "load",
        "embed",
        "validation",
        "ranker",
        "als",
        "ease",
        "popularity",
    }
    assert manifest.libraries["implicit"] != "not installed"
    assert manifest.libraries["lightgbm"] != "not installed"
    assert list(manifest.arms) == ["als", "ease", "content", "popularity"]
    assert {r.status for r in manifest.arms.values()} == {"fitted"}
    assert manifest.arms["als"].files == ["item_factors.npy"]
    assert manifest.arms["als"].config["factors"] == 2
    ease = manifest.arms["ease"]
    assert len(ease.config["regularization"]) == 1  # the value tuned on validation
    assert ease.config["regularization"][0] in SMALL.arm(EaseArm).regularization
    assert len(ease.details["tuning"]) > 1
    assert ease.details["movies"] == run_dir.array("ease_columns.npy").size
    assert manifest.ranker.status == "trained"
    assert manifest.ranker.file == "ranker.txt"
    assert manifest.ranker.features[:2] == ["als", "als_rank"]
    assert manifest.ranker.details["rounds"] >= 1
    assert manifest.files["ranker.txt"].kind == "text"
    embeddings = run_dir.array("embeddings.npy")
    assert embeddings.shape == (20, 384)
    np.testing.assert_array_equal(run_dir.array("movie_ids.npy"), np.arange(1, 21))
    assert run_dir.array("item_factors.npy").shape == (20, 2)
    assert run_dir.sparse("user_ratings.npz").nnz == 240
    assert run_dir.array("user_rating_times.npy").shape == (240,)
    assert run_dir.json("genres.json") == ["Animation", "Children", "Comedy", "Horror", "Thriller"]
    assert run_dir.array("movie_genres.npy")[:10, 0].tolist() == [1] * 10
    assert run_dir.array("movie_years.npy")[0] == 1991
    index = read_index(run_dir.path("content.faiss"))
    assert index.ntotal == 20
    # the content index puts family films next to family films
    _, neighbours = index.search(embeddings[:1], 4)
    assert set((neighbours[0] + 1).tolist()) <= set(BLOCK_A)


def test_freshness_follows_data_and_config(
    tiny_movielens: Path, tmp_path: Path, sentence_encoder: SentenceEncoder
) -> None:
    out = tmp_path / "artifacts"
    fresh, why = is_fresh(out, tiny_movielens, SMALL)
    assert not fresh
    assert "does not exist" in why
    run(tiny_movielens, out, sentence_encoder)
    assert is_fresh(out, tiny_movielens, SMALL)[0]
    other = SMALL.model_copy(update={"seed": 1})
    fresh, why = is_fresh(out, tiny_movielens, other)
    assert not fresh
    assert "config changed" in why
    with (tiny_movielens / "ratings.csv").open("a") as handle:
        handle.write("1,15,2.0,1600000000\n")
    fresh, why = is_fresh(out, tiny_movielens, SMALL)
    assert not fresh
    assert "data in" in why
    # a damaged current run is stale too
    run(tiny_movielens, out, sentence_encoder)
    (out / "current" / "embeddings.npy").write_bytes(b"broken")
    fresh, why = is_fresh(out, tiny_movielens, SMALL)
    assert not fresh
    assert "invalid" in why


def test_a_failed_run_keeps_the_previous_current(
    tiny_movielens: Path, tmp_path: Path, sentence_encoder: SentenceEncoder
) -> None:
    out = tmp_path / "artifacts"
    first = run(tiny_movielens, out, sentence_encoder)
    with (tiny_movielens / "ratings.csv").open("a") as handle:
        handle.write("1,15,9,1600000000\n")
    with pytest.raises(Exception, match="rating 9"):
        run(tiny_movielens, out, sentence_encoder)
    assert (out / "current").resolve() == first.run_dir.resolve()


def test_old_runs_are_pruned(
    tiny_movielens: Path, tmp_path: Path, sentence_encoder: SentenceEncoder
) -> None:
    out = tmp_path / "artifacts"
    for seed in range(5):
        run(tiny_movielens, out, sentence_encoder, SMALL.model_copy(update={"seed": seed}))
    runs = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) <= 3
    assert (out / "current").resolve() in [p.resolve() for p in runs]


def test_config_files_are_validated(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        "[arms.als]\nfactors = 16\nweighting = 'log'\n[arms.ease]\nmax_memory_mb = 64\n"
    )
    config = TrainConfig.load(good)
    assert config.arm(AlsArm).factors == 16
    assert config.arm(AlsArm).weighting == "log"
    assert config.arm(AlsArm).iterations == TrainConfig().arm(AlsArm).iterations
    assert config.arm(EaseArm).max_memory_mb == 64
    # runs before the arm registry had [als] at the top: it is read as [arms.als]
    legacy = tmp_path / "legacy.toml"
    legacy.write_text("[als]\nfactors = 16\nweighting = 'log'\n")
    assert TrainConfig.load(legacy).arm(AlsArm) == config.arm(AlsArm)
    bad = tmp_path / "bad.toml"
    bad.write_text("[arms.als]\nfactors = -3\nfactorz = 2\n[arms.knn]\nk = 3\n")
    with pytest.raises(
        ConfigError, match=r"bad.toml: arms.als.factors: .*; arms.als.factorz: Extra.*arms.knn"
    ):
        TrainConfig.load(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("[als\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        TrainConfig.load(broken)
    with pytest.raises(ConfigError, match="cannot read config"):
        TrainConfig.load(tmp_path / "missing.toml")
    assert TrainConfig.load(None).digest() == TrainConfig().digest()


def test_cli_errors_are_one_clear_line(
    tiny_movielens: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (tiny_movielens / "ratings.csv").open("a") as handle:
        handle.write("1,15,7,1600000000\n")
    code = main(["train", "--data-dir", str(tiny_movielens), "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("recsys-gql: error: ratings.csv, line 242: rating 7 is not in")
    assert "Traceback" not in err
    code = main(["artifacts", "verify", str(tmp_path / "nothing")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_an_arm_over_its_memory_budget_is_skipped_visibly(
    tiny_movielens: Path,
    tmp_path: Path,
    sentence_encoder: SentenceEncoder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ease = SMALL.arm(EaseArm).model_copy(update={"max_memory_mb": 0.001})
    config = SMALL.with_arm(ease, "ease")
    run(tiny_movielens, tmp_path / "artifacts", sentence_encoder, config)
    current = tmp_path / "artifacts" / "current"
    manifest = ArtifactDir.open(current).manifest
    record = manifest.arms["ease"]
    assert record.status == "skipped"
    assert record.reason is not None
    assert "over the 0 MB budget (ease.max_memory_mb)" in record.reason
    assert not any(name.startswith("ease") for name in manifest.files)
    assert not any(f.startswith("ease") for f in manifest.ranker.features)
    engine = Engine.load(current, encoder=sentence_encoder)
    status = {s.name: s for s in engine.arm_status}
    assert not status["ease"].serving
    assert status["ease"].reason == record.reason
    assert [arm.name for arm in engine.arms] == ["als", "content", "popularity"]
    recs = engine.recommend(1, n=3)
    assert [r.source for r in recs] == ["ranker"] * 3
    assert "ease" not in recs[0].arm_scores
    assert main(["artifacts", "verify", str(current)]) == 0
    assert "files verified" in capsys.readouterr().out
