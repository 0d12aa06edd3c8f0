"""The content index: choice by catalog size, loading each kind from the manifest, recall."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.scale_data import SynthSpec, catalog, write_run
from recsys_gql.errors import ArtifactError
from recsys_gql.recsys import ann
from recsys_gql.recsys.content import ContentGraph
from recsys_gql.recsys.engine import Engine
from training.config import IndexConfig


def planted(n: int, clusters: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Unit vectors in ``clusters`` tight groups: each point's nearest are its group."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    points = centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, dim))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def test_auto_choice_is_exact_up_to_the_threshold_and_ivf_above() -> None:
    flat = ann.FLAT_MAX_ITEMS
    assert ann.choose_index(9_742).kind == "flat"
    assert ann.choose_index(flat).kind == "flat"
    assert ann.choose_index(flat + 1).kind == "ivf"
    big = ann.choose_index(1_000_000)
    assert (big.kind, big.ivf_nlist, big.ivf_nprobe) == ("ivf", 1000, 62)
    mid = ann.choose_index(62_423)
    assert (mid.kind, mid.ivf_nlist, mid.ivf_nprobe) == ("ivf", 250, 15)
    assert "auto" in ann.choose_index(1_000_000).reason
    # an explicit choice wins at any size, and config parameters are carried over
    assert ann.choose_index(1_000_000, "flat").kind == "flat"
    spec = IndexConfig(kind="ivf", ivf_nprobe=7).spec(500)
    assert (spec.kind, spec.ivf_nprobe) == ("ivf", 7)
    assert IndexConfig().spec(2_000_000).kind == "ivf"
    with pytest.raises(ValueError, match="non-negative"):
        ann.choose_index(-1)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_index_recall_on_planted_clusters(kind: ann.IndexKind) -> None:
    vectors = planted(3_000, 60)
    spec = ann.IndexSpec(kind=kind, hnsw_ef_search=64, ivf_nlist=60, ivf_nprobe=8)
    index = ann.build(vectors, spec)
    assert type(index).__name__ == spec.faiss_type
    _, found = index.search(vectors[:300], 10)
    truth = np.argsort(-(vectors[:300] @ vectors.T), axis=1, kind="stable")[:, :10]
    assert recall(found, truth) >= 0.95
    narrow = ann.IndexSpec(kind=kind, hnsw_ef_search=8, ivf_nlist=60, ivf_nprobe=1)
    ann.configure(index, narrow)
    assert (index.hnsw.efSearch if kind == "hnsw" else index.nprobe) == (8 if kind == "hnsw" else 1)


def test_cell_graph_recall_and_no_self_on_planted_clusters() -> None:
    vectors = planted(4_000, 40, seed=1)
    scores, found = ann.knn_graph(vectors, 20, probe=4)
    assert found.shape == (4_000, 20)
    assert not (found == np.arange(4_000)[:, None]).any()
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first
    sample = np.arange(0, 4_000, 10)
    sims = vectors[sample] @ vectors.T
    sims[np.arange(sample.size), sample] = -np.inf
    truth = np.argsort(-sims, axis=1, kind="stable")[:, :20]
    assert recall(found[sample], truth) >= 0.95
    graph = ContentGraph.build_approximate(vectors, 20, probe=4)
    np.testing.assert_array_equal(graph.neighbors, found.astype(np.int32))
    # the lists of the catalog's IVF index serve as the cells
    ivf = ann.build(vectors, ann.IndexSpec(kind="ivf", ivf_nlist=40, ivf_nprobe=4))
    _, by_lists = ann.knn_graph(vectors, 20, probe=4, ivf=ivf)
    assert not (by_lists == np.arange(4_000)[:, None]).any()
    assert recall(by_lists[sample], truth) >= 0.95


def test_missing_hits_become_harmless_self_links() -> None:
    found = np.array([[1, -1], [0, 2]])
    scores = np.array([[0.9, -np.inf], [0.9, 0.5]], dtype=np.float32)
    graph = ContentGraph.from_hits(found, scores)
    assert graph.neighbors.tolist() == [[1, 0], [0, 2]]
    np.testing.assert_allclose(graph.similarities, [[0.9, 0.0], [0.9, 0.5]])


def synthetic_run(root: Path, spec_kind: ann.IndexKind, built_kind: ann.IndexKind) -> Path:
    synth = SynthSpec(movies=1_500, users=300)
    cat = catalog(synth)
    spec = ann.IndexSpec(kind=spec_kind, hnsw_ef_search=40, ivf_nlist=30, ivf_nprobe=5)
    index = ann.build(cat.embeddings, spec.model_copy(update={"kind": built_kind}))
    graph = ContentGraph.build(index, cat.embeddings, 10)
    out = root / f"{spec_kind}-{built_kind}"
    write_run(synth, out, index=index, index_spec=spec, graph=graph, cat=cat, stages={})
    return out


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_engine_loads_the_index_kind_the_manifest_names(tmp_path: Path, kind: str) -> None:
    engine = Engine.load(synthetic_run(tmp_path, kind, kind))  # type: ignore[arg-type]
    assert engine.manifest.content_index is not None
    assert engine.manifest.content_index.kind == kind
    assert type(engine.index).__name__ == engine.index_spec.faiss_type
    if kind == "hnsw":
        assert engine.index.hnsw.efSearch == 40
    if kind == "ivf":
        assert (engine.index.nlist, engine.index.nprobe) == (30, 5)
    similar = engine.similar(1, n=5)
    assert len(similar) == 5
    assert 1 not in [s.movie_id for s in similar]
    assert similar[0].score >= similar[-1].score


def test_engine_refuses_an_index_of_another_kind_than_the_manifest(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"IndexFlatIP.*IndexHNSWFlat"):
        Engine.load(synthetic_run(tmp_path, "hnsw", "flat"))
