"""The artifact manifest round-trips and every kind of damage is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_gql.artifacts import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    ArmRecord,
    ArtifactDir,
    ArtifactWriter,
    DataFingerprint,
    RankerRecord,
    publish,
    read_manifest,
    verify,
)
from recsys_gql.errors import ArtifactError
from recsys_gql.recsys.ann import IndexSpec
from recsys_gql.recsys.arms import ARMS
from recsys_gql.recsys.runs import verify_run


def arm_sections() -> dict[str, ArmRecord]:
    """Every registered arm with its default config; EASE^R skipped, ALS owning factors.npy."""
    sections = {}
    for kind in ARMS:
        config = kind.config_type()().model_dump(mode="json")
        if kind.name == "ease":
            sections[kind.name] = ArmRecord(status="skipped", reason="over budget", config=config)
        else:
            files = ["factors.npy"] if kind.name == "als" else []
            sections[kind.name] = ArmRecord(status="fitted", config=config, files=files)
    return sections


def make_run(directory: Path) -> dict[str, object]:
    writer = ArtifactWriter(directory)
    factors = np.arange(12, dtype=np.float32).reshape(4, 3)
    ids = np.array([3, 5, 9, 11], dtype=np.int64)
    matrix = sp.csr_matrix(np.array([[0, 1.5], [2.0, 0]], dtype=np.float32))
    writer.save_array("factors.npy", factors)
    writer.save_array("ids.npy", ids)
    writer.save_sparse("ratings.npz", matrix)
    writer.save_json("genres.json", ["Comedy", "Drama"])
    (directory / "index.bin").write_bytes(b"\x00\x01index")
    writer.add_file("index.bin", (4, 3))
    writer.save_text("ranker.txt", "tree\nversion=v4\n")
    writer.finalize(
        content_index=IndexSpec(),
        arms=arm_sections(),
        ranker=RankerRecord(status="trained", file="ranker.txt", features=["als"]),
        run_id="run-1",
        libraries={"numpy": np.__version__},
        config={"als": {"factors": 3}},
        data=DataFingerprint(sha256="ab" * 32, files={"ratings.csv": "cd" * 32}),
        counts={"movies": 4},
        models={"collaborative": "test"},
    )
    return {"factors": factors, "ids": ids, "matrix": matrix}


def test_manifest_round_trips(tmp_path: Path) -> None:
    saved = make_run(tmp_path / "run")
    run = ArtifactDir.open(tmp_path / "run")
    manifest = run.manifest
    assert manifest.run_id == "run-1"
    assert manifest.config == {"als": {"factors": 3}}
    assert manifest.files["factors.npy"].shape == (4, 3)
    assert manifest.files["factors.npy"].dtype == "float32"
    assert manifest.files["ratings.npz"].shape == (2, 2)
    assert manifest.files["index.bin"].kind == "binary"
    assert manifest.files["ranker.txt"].kind == "text"
    assert run.text("ranker.txt") == "tree\nversion=v4\n"
    assert manifest.arms["ease"].status == "skipped"
    assert manifest.arms["ease"].reason == "over budget"
    assert manifest.arms["als"].files == ["factors.npy"]
    np.testing.assert_array_equal(run.array("factors.npy"), saved["factors"])
    np.testing.assert_array_equal(run.array("ids.npy"), saved["ids"])
    assert (run.sparse("ratings.npz") != saved["matrix"]).nnz == 0
    assert run.json("genres.json") == ["Comedy", "Drama"]
    # the JSON on disk parses back into an equal manifest, readable by other users
    assert read_manifest(tmp_path / "run") == manifest
    assert (tmp_path / "run" / MANIFEST_NAME).stat().st_mode & 0o044 == 0o044


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    writer = ArtifactWriter(tmp_path)
    with pytest.raises(ValueError, match="pickle"):
        writer.save_array("bad.npy", np.array([{"a": 1}], dtype=object))


@pytest.mark.parametrize(
    "victim", ["factors.npy", "ids.npy", "ratings.npz", "index.bin", "ranker.txt"]
)
def test_a_tampered_file_is_refused_by_name(tmp_path: Path, victim: str) -> None:
    make_run(tmp_path)
    path = tmp_path / victim
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, one flipped bit pattern
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=rf"{victim} does not match its sha256") as err:
        ArtifactDir.open(tmp_path)
    assert err.value.path == str(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    make_run(tmp_path)
    (tmp_path / "ids.npy").unlink()
    with pytest.raises(ArtifactError, match=r"ids\.npy is missing"):
        verify(tmp_path)


def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    make_run(tmp_path)
    path = tmp_path / "factors.npy"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ArtifactError, match=r"factors\.npy is \d+ bytes, the manifest says"):
        verify(tmp_path)


def test_an_array_of_another_shape_is_refused_even_with_a_matching_hash(tmp_path: Path) -> None:
    make_run(tmp_path)
    np.save(tmp_path / "factors.npy", np.zeros((3, 4), dtype=np.float32))
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    # a forger who also rewrites the hash and size still trips over the recorded shape
    from recsys_gql.artifacts import sha256_file

    entry = manifest["files"]["factors.npy"]
    entry["sha256"] = sha256_file(tmp_path / "factors.npy")
    entry["bytes"] = (tmp_path / "factors.npy").stat().st_size
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"holds float32\[3, 4\], the manifest says"):
        verify(tmp_path)


def test_missing_manifest_and_other_schema_versions_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        verify(tmp_path / "nowhere")
    make_run(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    manifest["schema_version"] = 999
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="schema version 999"):
        verify(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text("{ not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        verify(tmp_path)
    (tmp_path / MANIFEST_NAME).unlink()
    with pytest.raises(ArtifactError, match=r"manifest\.json is missing"):
        verify(tmp_path)


def test_a_run_of_the_previous_schema_asks_for_a_retrain(tmp_path: Path) -> None:
    make_run(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    manifest["schema_version"] = SCHEMA_VERSION - 1
    for section in ("arms", "ranker"):
        del manifest[section]
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(
        ArtifactError, match=r"schema version 1, .* retrain with `recsys-gql train`"
    ):
        ArtifactDir.open(tmp_path)


def rewrite(tmp_path: Path, change: dict[str, object]) -> None:
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    for dotted, value in change.items():
        *path, last = dotted.split(".")
        node = manifest
        for key in path:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"arms.ease": None}, r"no section for arm\(s\) ease: retrain"),
        ({"arms.knn": {"status": "fitted", "config": {}}}, r"unknown arm 'knn'; known: als"),
        ({"arms.als.config.factors": -1}, r"arm 'als' config is invalid"),
        ({"arms.als.config.factorz": 2}, r"arm 'als' config is invalid"),
        ({"arms.als.files": ["gone.npy"]}, r"arm 'als' owns 'gone\.npy', which is not listed"),
        ({"arms.content.status": "skipped"}, r"the content arm is required but was skipped"),
        ({"ranker.file": "other.txt"}, r"the ranker's model file 'other\.txt' is not listed"),
    ],
)
def test_arm_and_ranker_sections_are_checked(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    make_run(tmp_path)
    rewrite(tmp_path, change)
    with pytest.raises(ArtifactError, match=message):
        verify_run(tmp_path)


def test_unlisted_files_cannot_be_loaded(tmp_path: Path) -> None:
    make_run(tmp_path)
    np.save(tmp_path / "extra.npy", np.zeros(2))
    run = ArtifactDir.open(tmp_path)
    with pytest.raises(ArtifactError, match=r"lists no file 'extra\.npy'"):
        run.array("extra.npy")


def test_publish_points_current_at_the_new_run(tmp_path: Path) -> None:
    make_run(tmp_path / "run-a")
    make_run(tmp_path / "run-b")
    link = publish(tmp_path / "run-a", tmp_path)
    assert link.resolve() == (tmp_path / "run-a").resolve()
    publish(tmp_path / "run-b", tmp_path)
    assert (tmp_path / "current").resolve() == (tmp_path / "run-b").resolve()
    assert ArtifactDir.open(tmp_path / "current").directory == (tmp_path / "run-b").resolve()
    assert not list(tmp_path.glob(".current*"))


def test_the_file_checks_alone_leave_the_arm_sections_to_the_engine(tmp_path: Path) -> None:
    """``verify`` without a section check trusts the sections (the manifest format knows no
    arms); ``verify_run``, which the engine, the CLI and training use, refuses them."""
    make_run(tmp_path)
    rewrite(tmp_path, {"ranker.file": "other.txt"})
    assert verify(tmp_path).ranker.file == "other.txt"
    with pytest.raises(ArtifactError, match="is not listed"):
        verify_run(tmp_path)
