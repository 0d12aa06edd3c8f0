"""The ONNX Runtime encoder variants against the fp32 torch encoder, and how a run records
the variant its movies were embedded with so that queries use the same one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recsys_gql.cli import main
from recsys_gql.errors import ArtifactError
from recsys_gql.recsys.content import SentenceEncoder
from recsys_gql.recsys.engine import Engine, query_encoder
from recsys_gql.recsys.onnx_encoder import MODEL_FILE, export_dir_for
from tests.conftest import BLOCK_A, write_tiny_movielens
from training.config import TrainConfig
from training.pipeline import train

TEXTS = [
    "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy. Tags: pixar, "
    "fun. A cowboy doll is profoundly threatened and jealous when a new spaceman figure "
    "supplants him as top toy in a boy's room.",
    "Heat (1995). Genres: Action, Crime, Thriller. A group of professional bank robbers start "
    "to feel the heat from police when they unknowingly leave a clue at their latest heist.",
    "Jumanji (1995). Genres: Adventure, Children, Fantasy.",
    "Grumpier Old Men (1995). Genres: Comedy, Romance. Tags: moldy, old.",
    "space adventure with robots",
    "a",
]


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An XDG cache home for this module: the ONNX exports go to ``<it>/recsys-gql/onnx``."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(scope="module")
def int8_encoder(cache_home: Path) -> SentenceEncoder:
    return SentenceEncoder(backend="onnx-int8", export_root=cache_home / "recsys-gql")


@pytest.fixture(scope="module")
def baseline(sentence_encoder: SentenceEncoder) -> np.ndarray:
    return sentence_encoder.encode(TEXTS)


def test_encoder_export_builds_the_graph_that_servers_load(
    cache_home: Path,
    int8_encoder: SentenceEncoder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))  # settings.cache_dir: <it>/recsys-gql
    monkeypatch.setenv("RECSYS_GQL_ARTIFACTS_DIR", str(tmp_path))  # no run yet (an image build)
    monkeypatch.delenv("RECSYS_GQL_CACHE_DIR", raising=False)
    monkeypatch.delenv("RECSYS_GQL_SEARCH_ENCODER", raising=False)  # onnx-int8 by default
    assert main(["encoder", "export"]) == 0
    built = Path(capsys.readouterr().out.strip().removeprefix("onnx-int8 query encoder: "))
    assert built.name == MODEL_FILE
    assert built.is_file()
    # the encoder a server builds (no export_root: $RECSYS_GQL_CACHE_DIR, else the XDG cache)
    # finds that file instead of exporting its own
    assert SentenceEncoder(backend="onnx-int8").export() == built == int8_encoder.export()
    stamp = built.stat().st_mtime_ns
    assert main(["encoder", "export"]) == 0  # a second run builds nothing
    assert built.stat().st_mtime_ns == stamp


def test_encoder_export_follows_the_configured_encoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECSYS_GQL_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.setenv("RECSYS_GQL_SEARCH_ENCODER", "torch")
    assert main(["encoder", "export"]) == 0
    assert capsys.readouterr().out == "the query encoder runs on torch: nothing to export\n"
    monkeypatch.setenv("RECSYS_GQL_SEARCH_ENCODER", "run")
    assert main(["encoder", "export"]) == 2
    assert "RECSYS_GQL_SEARCH_ENCODER is 'run' and there is no run at" in capsys.readouterr().err


def test_int8_vectors_agree_with_fp32_torch(
    int8_encoder: SentenceEncoder, baseline: np.ndarray
) -> None:
    vectors = int8_encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = np.einsum("ij,ij->i", vectors, baseline)
    assert cosine.mean() >= 0.99
    assert cosine.min() >= 0.98
    # and each text stays closest to its own fp32 vector
    assert (np.argmax(vectors @ baseline.T, axis=1) == np.arange(len(TEXTS))).all()


def test_fp32_onnx_reproduces_torch(cache_home: Path, baseline: np.ndarray) -> None:
    encoder = SentenceEncoder(backend="onnx", export_root=cache_home / "recsys-gql")
    cosine = np.einsum("ij,ij->i", encoder.encode(TEXTS), baseline)
    assert cosine.min() >= 0.9999


def test_order_is_kept_whatever_the_length_sorting(int8_encoder: SentenceEncoder) -> None:
    forward = int8_encoder.encode(TEXTS)
    backward = int8_encoder.encode(TEXTS[::-1])[::-1]
    # int8 activations are quantised per batch, so identical batches give identical vectors
    np.testing.assert_allclose(forward, backward, atol=1e-6)
    assert int8_encoder.encode([]).shape == (0, 384)


def test_the_export_is_cached_and_each_variant_has_its_own_key(
    int8_encoder: SentenceEncoder, sentence_encoder: SentenceEncoder, cache_home: Path
) -> None:
    int8_encoder.encode(TEXTS[:1])
    exported = list((cache_home / "recsys-gql" / "onnx").glob(f"*-onnx-int8/{MODEL_FILE}"))
    assert len(exported) == 1
    assert exported[0].parent == export_dir_for(
        cache_home / "recsys-gql", exported[0].parent.name.removesuffix("-onnx-int8"), "onnx-int8"
    )
    assert int8_encoder.model_key == sentence_encoder.model_key + "-onnx-int8"
    shorter = SentenceEncoder(backend="onnx-int8", max_seq_length=128)
    assert shorter.model_key != int8_encoder.model_key


def _import_leaves(tmp_path: Path, name: str, statement: str, **env: str) -> list[str]:
    """What importing onnxruntime by ``statement`` leaves under a fresh ``$HOME``, in a new
    process with no ``CI`` variable (ONNX Runtime keeps quiet on CI machines by itself)."""
    home = tmp_path / name
    home.mkdir()
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "ORT_DISABLE_TELEMETRY")}
    subprocess.run(
        [sys.executable, "-c", statement], env={**clean, **env, "HOME": str(home)}, check=True
    )
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())


def test_onnx_runtime_telemetry_is_off_unless_the_environment_turns_it_on(
    tmp_path: Path,
) -> None:
    ours = "from recsys_gql.recsys.onnx_encoder import onnxruntime_quietly; onnxruntime_quietly()"
    assert _import_leaves(tmp_path, "ours", ours) == []
    # the library's own default, which the helper changes: a device id under ~/.cache
    plain = _import_leaves(tmp_path, "plain", "import onnxruntime")
    assert ".cache/Microsoft/DeveloperTools/.onnxruntime/deviceid" in plain
    assert _import_leaves(tmp_path, "asked", ours, ORT_DISABLE_TELEMETRY="0") == plain


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown encoder backend 'onnx-fp16'"):
        SentenceEncoder(backend="onnx-fp16")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def int8_run(
    tmp_path_factory: pytest.TempPathFactory, int8_encoder: SentenceEncoder
) -> tuple[Path, TrainConfig]:
    root = tmp_path_factory.mktemp("int8-run")
    config = TrainConfig.model_validate(
        {
            "embedding": {"backend": "onnx-int8"},
            "als": {"factors": 2, "iterations": 10, "regularization": 1.0},
        }
    )
    train(
        write_tiny_movielens(root / "data"),
        root / "artifacts",
        config,
        cache_dir=None,
        encoder_factory=lambda _: int8_encoder,
        report=lambda _: None,
        show_progress=False,
    )
    return root / "artifacts" / "current", config


def test_the_manifest_records_the_variant_and_queries_use_it(
    int8_run: tuple[Path, TrainConfig],
    int8_encoder: SentenceEncoder,
    cache_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    run, _ = int8_run
    engine = Engine.load(run)
    assert engine.manifest.models["embedding_backend"] == "onnx-int8"
    assert engine.manifest.models["embedding_key"] == int8_encoder.model_key
    assert engine.manifest.models["embedding_max_seq_length"] == "256"
    rebuilt = query_encoder(engine.manifest)
    assert (rebuilt.backend, rebuilt.model_key) == ("onnx-int8", int8_encoder.model_key)
    hits = engine.search("animated family film for children", 3)
    assert {hit.movie_id for hit in hits} <= set(BLOCK_A)


def test_encoder_export_for_run_exports_what_the_current_run_embedded_with(
    int8_run: tuple[Path, TrainConfig],
    int8_encoder: SentenceEncoder,
    cache_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run, _ = int8_run
    monkeypatch.setenv("RECSYS_GQL_ARTIFACTS_DIR", str(run.parent))
    monkeypatch.setenv("RECSYS_GQL_CACHE_DIR", str(cache_home / "recsys-gql"))
    monkeypatch.setenv("RECSYS_GQL_SEARCH_ENCODER", "run")
    assert main(["encoder", "export"]) == 0
    assert capsys.readouterr().out == f"onnx-int8 query encoder: {int8_encoder.export()}\n"


def test_a_query_encoder_of_another_variant_is_refused(
    int8_run: tuple[Path, TrainConfig], sentence_encoder: SentenceEncoder
) -> None:
    run, _ = int8_run
    with pytest.raises(ArtifactError, match=r"not the encoder the movies .* were embedded with"):
        Engine.load(run, encoder=sentence_encoder)


def test_runs_from_before_the_variants_are_served_with_torch(
    int8_run: tuple[Path, TrainConfig],
) -> None:
    run, _ = int8_run
    manifest = Engine.load(run).manifest
    models = {k: v for k, v in manifest.models.items() if not k.startswith("embedding_")}
    legacy = manifest.model_copy(
        update={"models": models, "config": {**manifest.config, "embedding": {}}}
    )
    encoder = query_encoder(legacy)
    assert (encoder.backend, encoder.max_seq_length) == ("torch", 256)
    unknown = manifest.model_copy(update={"models": {**models, "embedding_backend": "tpu"}})
    with pytest.raises(ArtifactError, match="unknown encoder backend 'tpu'"):
        query_encoder(unknown)


def test_a_chosen_query_runtime_of_the_same_weights_is_accepted(
    int8_run: tuple[Path, TrainConfig],
    sentence_encoder: SentenceEncoder,
    cache_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    run, _ = int8_run  # movies embedded on ONNX Runtime with int8 weights
    engine = Engine.load(run, encoder=sentence_encoder, encoder_backend="torch")
    hits = engine.search("animated family film for children", 3)
    assert {hit.movie_id for hit in hits} <= set(BLOCK_A)
    lazy = Engine.load(run, encoder_backend="torch", encoder_threads=1)
    assert not lazy.search_model_loaded
    assert [h.movie_id for h in lazy.search("a haunted house", 3)] == [
        h.movie_id for h in engine.search("a haunted house", 3)
    ]
    other = SentenceEncoder(model_name="someone/another-model", model_path="/nonexistent")
    with pytest.raises(ArtifactError, match="not the encoder the movies"):
        Engine.load(run, encoder=other, encoder_backend="torch")
