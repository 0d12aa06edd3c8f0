"""Serving at scale: engine latency, index build and memory for catalogs of 9.7k to 1M movies.

Run from the repository root::

    python -m bench.scale_serve [--sizes 9742,62423,1000000] [--calls 300] [--queries 300]

For each size:

* **build** — the real ml-latest-small run (``artifacts/current``, from ``make data train``)
  serves the size equal to its catalog; any other size is a synthetic catalog
  (:mod:`bench.scale_data`) written through the pipeline's own artifact writer. Timed: data
  generation, the content index the ``auto`` choice picks, the 50-neighbour content graph
  (with its recall@50 against exact search on sampled movies), writing, and size on disk.
* **serve** — in a fresh process (so resident memory is the engine's alone): ``Engine.load``,
  RSS, then p50/p99 of ``recommend`` (known user, with a new rating folded in, cold),
  ``similar`` and ``search``; search is split into query encoding and index lookup. The
  collaborative arm is broken down (factor product, top-k partition, a full argsort for
  comparison) and the candidate blend is checked against the dense blend on every call.
* **indexes** — exact ``IndexFlatIP`` against HNSW (efSearch sweep) and IVF-Flat / IVF-SQ8 /
  IVF-PQ (nprobe sweep) sharing one coarse quantizer: build time, bytes, single-query latency
  p50/p99 and recall@10 against exact, over ``--queries`` movies used as queries (as
  ``similar`` does).

Synthetic runs are cached under ``--workdir`` and rebuilt only with ``--rebuild``. Results,
with the machine (cores, memory) and load averages, go to ``bench/results/scale_serve.json``,
rewritten after every phase so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import latency_summary, machine_info, write_json_atomic

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "scale_serve.json"
DEFAULT_WORKDIR = Path("/tmp/recsys-gql-scale-serve")
DEFAULT_SIZES = (9742, 62423, 1_000_000)
SEED = 42
SEARCH_CALLS = 60
JsonDict = dict[str, Any]


def log(message: str) -> None:
    """Progress on stderr with a timestamp."""
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def rss_mb() -> dict[str, float]:
    """Current and peak resident memory of this process (``/proc/self/status``), in MB."""
    out: dict[str, float] = {}
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out["rss_mb" if line.startswith("VmRSS") else "peak_rss_mb"] = round(
                    int(line.split()[1]) / 1024, 1
                )
    return out


def timed(call: Callable[[int], object], calls: int, warmup: int = 10) -> JsonDict:
    """Warm up, then time ``call(i)`` one call at a time."""
    for i in range(warmup):
        call(calls + i)
    spent = []
    for i in range(calls):
        start = time.perf_counter()
        call(i)
        spent.append(time.perf_counter() - start)
    return latency_summary(spent)


def dir_bytes(directory: Path) -> JsonDict:
    """Bytes of every file of a run directory, and the total."""
    files = {p.name: p.stat().st_size for p in sorted(directory.iterdir()) if p.is_file()}
    return {"total_mb": round(sum(files.values()) / 2**20, 1), "files_bytes": files}


# -- build ----------------------------------------------------------------------------------


def graph_recall(embeddings: np.ndarray, neighbors: np.ndarray, sample: int) -> float:
    """Mean recall@k of the graph's neighbour lists against exact search, on sampled movies."""
    import faiss

    n, k = neighbors.shape
    rows = np.random.default_rng(SEED).choice(n, min(sample, n), replace=False)
    _, exact = faiss.knn(embeddings[rows], embeddings, k + 1, faiss.METRIC_INNER_PRODUCT)
    hits = []
    for i, row in enumerate(rows):
        truth = [j for j in exact[i].tolist() if j != row][:k]
        hits.append(len(set(truth) & set(neighbors[row].tolist())) / max(len(truth), 1))
    return round(float(np.mean(hits)), 4)


def build_synthetic(size: int, workdir: Path, rebuild: bool) -> tuple[Path, JsonDict]:
    """Generate, index and write a synthetic catalog of ``size`` movies (or reuse it)."""
    from bench.scale_data import SynthSpec, catalog, write_run
    from training.config import IndexConfig
    from training.pipeline import content_graph

    run_dir = workdir / f"synthetic-{size}"
    info_path = workdir / f"synthetic-{size}.build.json"
    if not rebuild and (run_dir / "manifest.json").is_file() and info_path.is_file():
        log(f"{size:,}: reusing {run_dir}")
        info: JsonDict = json.loads(info_path.read_text())
        info["reused_from_earlier_run"] = True
        return run_dir, info
    spec = SynthSpec(movies=size)
    info = {"source": "synthetic (bench/scale_data.py)", "spec": spec.__dict__}
    info["load_average_at_start"] = load_average()
    start = time.perf_counter()
    cat = catalog(spec)
    info["generate_seconds"] = round(time.perf_counter() - start, 1)
    info["ratings"] = int(cat.ratings.nnz)
    log(f"{size:,}: generated in {info['generate_seconds']}s, {cat.ratings.nnz:,} ratings")
    index_spec = IndexConfig().spec(size)
    info["index_spec"] = index_spec.model_dump()
    from recsys_gql.recsys import ann

    start = time.perf_counter()
    index = ann.build(cat.embeddings, index_spec, seed=SEED)
    info["index_build_seconds"] = round(time.perf_counter() - start, 1)
    log(f"{size:,}: {type(index).__name__} built in {info['index_build_seconds']}s")
    start = time.perf_counter()
    graph = content_graph(index, index_spec, cat.embeddings, 50)
    info["graph_build_seconds"] = round(time.perf_counter() - start, 1)
    exact_graph = index_spec.kind == "flat"
    info["graph_method"] = (
        "exact (flat search)"
        if exact_graph
        else ("IVF lists, probe 4" if index_spec.kind == "ivf" else "HNSW search per movie")
    )
    log(f"{size:,}: graph built in {info['graph_build_seconds']}s")
    info["graph_recall_at_50"] = graph_recall(cat.embeddings, graph.neighbors, 300)
    log(f"{size:,}: graph recall@50 {info['graph_recall_at_50']}")
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    start = time.perf_counter()
    write_run(
        spec, run_dir, index=index, index_spec=index_spec, graph=graph, cat=cat,
        stages={"index": info["index_build_seconds"], "graph": info["graph_build_seconds"]},
    )  # fmt: skip
    info["write_seconds"] = round(time.perf_counter() - start, 1)
    info["disk"] = dir_bytes(run_dir)
    info["load_average_at_end"] = load_average()
    write_json_atomic(info_path, info)
    return run_dir, info


def real_build(run_dir: Path) -> JsonDict:
    """Index and graph build times re-measured on the real run's embeddings."""
    from recsys_gql.artifacts import ArtifactDir
    from recsys_gql.recsys import ann
    from recsys_gql.recsys.content import ContentGraph
    from training.config import IndexConfig

    artifacts = ArtifactDir.open(run_dir)
    embeddings = artifacts.array("embeddings.npy")
    spec = IndexConfig().spec(embeddings.shape[0])
    start = time.perf_counter()
    index = ann.build(embeddings, spec, seed=SEED)
    index_seconds = time.perf_counter() - start
    start = time.perf_counter()
    graph = ContentGraph.build(index, embeddings, 50)
    graph_seconds = time.perf_counter() - start
    return {
        "source": f"real ml-latest-small run {artifacts.manifest.run_id}",
        "index_spec": spec.model_dump(),
        "manifest_index": artifacts.manifest.models.get("index"),
        "index_build_seconds": round(index_seconds, 3),
        "graph_build_seconds": round(graph_seconds, 3),
        "graph_method": "exact (flat index)" if spec.kind == "flat" else "approximate",
        "graph_recall_at_50": graph_recall(embeddings, graph.neighbors, 300),
        "disk": dir_bytes(run_dir),
    }


# -- serve (child process) ------------------------------------------------------------------

QUERIES = (
    "a heist in space with a sarcastic robot",
    "feel-good animated movie about toys that come alive",
    "slow-burning psychological horror in an isolated house",
    "romantic comedy set in New York at Christmas",
    "gritty crime drama about a corrupt police officer",
    "epic fantasy quest to destroy a magical ring",
    "time travel paradox thriller",
    "zombie apocalypse survival",
)


def serve(run_dir: Path, calls: int, nprobe: int | None = None) -> JsonDict:
    """Load the engine from ``run_dir`` in this (fresh) process and time every operation
    (``nprobe`` overrides an IVF index's probes from the manifest)."""
    from recsys_gql.recsys.blend import (
        PriorContent,
        candidate_top_n,
        dense_top_n,
        ramped_alpha,
        ramped_prior_weight,
    )
    from recsys_gql.recsys.engine import Engine

    out: JsonDict = {"rss_before_load": rss_mb(), "load_average_at_start": load_average()}
    start = time.perf_counter()
    engine = Engine.load(run_dir)
    out["engine_load_seconds"] = round(time.perf_counter() - start, 2)
    out["rss_after_load"] = rss_mb()
    if nprobe is not None:
        from recsys_gql.recsys import ann

        engine.index_spec = engine.index_spec.model_copy(update={"ivf_nprobe": nprobe})
        ann.configure(engine.index, engine.index_spec)
    out["index"] = {"type": type(engine.index).__name__, "spec": engine.index_spec.model_dump()}
    rng = np.random.default_rng(SEED)
    counts = np.diff(engine.train_ratings.indptr)
    users = engine.users.ids[counts > 0]
    users = users[rng.permutation(users.size)]
    movies = engine.movies.ids
    picks = movies[rng.integers(0, movies.size, calls + 20)]
    ops: JsonDict = {}
    ops["recommend_known"] = timed(lambda i: engine.recommend(int(users[i % users.size])), calls)
    requests = []
    for i in range(calls + 10):
        user = int(users[i % users.size])
        ratings = engine.training_ratings(user)
        ratings[int(picks[i])] = 5.0
        requests.append((user, ratings))
    ops["recommend_fold_in"] = timed(
        lambda i: engine.recommend(requests[i][0], ratings=requests[i][1]), calls
    )
    unknown = int(engine.users.ids.max()) + 1
    ops["recommend_cold"] = timed(lambda i: engine.recommend(unknown + i), calls)
    ops["similar"] = timed(lambda i: engine.similar(int(picks[i])), calls)
    start = time.perf_counter()
    engine.encode_query(QUERIES[0])
    out["search_model_load_seconds"] = round(time.perf_counter() - start, 2)
    # The encoder's cost does not depend on the catalog (and is slow on a busy 2-core box):
    # fewer calls, the same for every size.
    search_calls = min(calls, SEARCH_CALLS)
    ops["search"] = timed(lambda i: engine.search(QUERIES[i % len(QUERIES)]), search_calls, 3)
    ops["search_encode_only"] = timed(
        lambda i: engine.encode_query(QUERIES[i % len(QUERIES)]), search_calls, 3
    )
    vectors = [engine.encode_query(q) for q in QUERIES]
    ops["search_index_only"] = timed(
        lambda i: engine.index.search(vectors[i % len(vectors)], 10), calls
    )
    out["operations"] = ops

    # The collaborative arm and the blend, part by part, on the same users.
    parts: dict[str, list[float]] = {
        k: [] for k in ("fold_in", "collab_matvec", "collab_argpartition_k256",
                        "collab_full_argsort", "content_sparse", "blend_candidates",
                        "blend_dense")
    }  # fmt: skip
    examined, mismatches = [], 0
    clock = time.perf_counter
    for i in range(min(calls, 100)):
        user = engine.history(int(users[i % users.size]))
        rows = user.rows
        mask = np.ones(len(engine.movies), dtype=bool)
        mask[rows] = False
        t0 = clock()
        fold = engine.als.fold_in(rows, user.ratings)
        t1 = clock()
        collab = engine.als.item_factors @ fold.factor
        t2 = clock()
        np.argpartition(collab, -256)[-256:]
        t3 = clock()
        if i < 10:
            np.argsort(-collab)
        t4 = clock()
        items, graph_scores = engine.graph.sparse_scores(rows, engine.content.weights(user))
        w = ramped_prior_weight(engine.settings.popularity_weight, rows.size, engine.settings.ramp)
        arm = PriorContent(items, graph_scores, engine.prior, w)
        a = ramped_alpha(engine.settings.alpha, rows.size, engine.settings.ramp)
        t5 = clock()
        fast = candidate_top_n(collab, arm, mask, a, 10)
        t6 = clock()
        dense = dense_top_n(collab, arm.dense(collab.size), mask, a, 10)
        t7 = clock()
        for name, spent in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5,
                                       t7 - t6), strict=True):  # fmt: skip
            if name != "collab_full_argsort" or i < 10:
                parts[name].append(spent)
        examined.append(fast.examined)
        same = np.array_equal(fast.rows, dense.rows) and np.array_equal(fast.score, dense.score)
        mismatches += not same
    out["recommend_parts"] = {k: latency_summary(v) for k, v in parts.items()}
    out["blend_examined_movies"] = {
        "p50": int(np.percentile(examined, 50)),
        "max": int(max(examined)),
        "catalog": len(engine.movies),
    }
    out["blend_candidate_vs_dense_mismatches"] = mismatches
    out["rss_end"] = rss_mb()
    out["load_average_at_end"] = load_average()
    return out


def serve_in_child(
    run_dir: Path, calls: int, timeout: float, nprobe: int | None = None
) -> JsonDict:
    """Run :func:`serve` in a fresh interpreter and return its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "serve.json"
        result = subprocess.run(
            [sys.executable, "-m", "bench.scale_serve", "--serve-run", str(run_dir),
             "--calls", str(calls), "--out", str(target)]
            + (["--nprobe", str(nprobe)] if nprobe else []),
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            return {"error": result.stderr[-3000:]}
        parsed: JsonDict = json.loads(target.read_text())
    return parsed


# -- index comparison -----------------------------------------------------------------------


def _query_latency(index: Any, queries: np.ndarray, k: int) -> tuple[JsonDict, np.ndarray]:
    """One query at a time on one thread, as the engine runs them (it limits BLAS/OpenMP to
    one thread; FAISS's OpenMP on a busy machine otherwise stalls single queries)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    found = np.empty((queries.shape[0], k), dtype=np.int64)
    spent = []
    try:
        for i in range(queries.shape[0]):
            start = time.perf_counter()
            _, hits = index.search(queries[i : i + 1], k)
            spent.append(time.perf_counter() - start)
            found[i] = hits[0]
    finally:
        faiss.omp_set_num_threads(threads)
    return latency_summary(spent), found


def _recall(found: np.ndarray, exact: np.ndarray, rows: np.ndarray, k: int = 10) -> float:
    """recall@k of ``similar``: the movie itself is dropped from both lists."""
    total = 0.0
    for i, row in enumerate(rows):
        truth = [j for j in exact[i].tolist() if j != row][:k]
        got = [j for j in found[i].tolist() if j != row and j >= 0][:k]
        total += len(set(truth) & set(got)) / len(truth)
    return round(total / len(rows), 4)


def compare_indexes(
    embeddings: np.ndarray,
    n_queries: int,
    reuse: Any = None,
    full: bool = True,
    large_hnsw_ms: tuple[int, ...] = (),
) -> JsonDict:
    """Exact against HNSW and IVF variants on ``embeddings``; see the module docstring."""
    import faiss

    n, dim = embeddings.shape
    rows = np.random.default_rng(SEED + 7).choice(n, min(n_queries, n), replace=False)
    queries = np.ascontiguousarray(embeddings[rows])
    k = 11
    out: JsonDict = {"queries": int(rows.size), "variants": []}

    def add(
        name: str,
        build_seconds: float | None,
        index: Any,
        sweep: dict[str, list[int]],
        setter: Callable[[Any, int], None] | None,
        exact: np.ndarray | None,
    ) -> np.ndarray:
        size = int(faiss.serialize_index(index).nbytes)
        entry: JsonDict = {"name": name, "build_seconds": build_seconds, "bytes": size}
        entry["settings"] = []
        last = np.empty(0)
        values = next(iter(sweep.values())) if sweep else [0]
        for value in values:
            if setter is not None:
                setter(index, value)
            latency, found = _query_latency(index, queries, k)
            recall = 1.0 if exact is None else _recall(found, exact, rows)
            key = next(iter(sweep)) if sweep else "exact"
            entry["settings"].append({key: value, "recall_at_10": recall, **latency})
            log(f"  {name} {key}={value}: recall {recall}, p50 {latency['p50_ms']} ms")
            last = found
        out["variants"].append(entry)
        return last

    start = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(embeddings)
    exact = add("Flat (exact)", round(time.perf_counter() - start, 2), flat, {}, None, None)
    del flat

    def set_ef(index: Any, value: int) -> None:
        index.hnsw.efSearch = value

    def set_probe(index: Any, value: int) -> None:
        index.nprobe = value

    if not full:
        # A large catalog on a shared 2-core machine: only the run's own IVF index is swept
        # (its build is measured in the build phase); HNSW and the other IVF codecs are
        # measured on the smaller catalogs, where their builds fit in the time bound.
        index, seconds = reuse
        probes = [p for p in (4, 8, 16, 32, 64, 128) if p <= index.nlist]
        add(f"IVF{index.nlist},Flat (the run's index)", seconds, index, {"nprobe": probes},
            set_probe, exact)  # fmt: skip
        del index
        for m in large_hnsw_ms:
            index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 40
            start = time.perf_counter()
            index.add(embeddings)
            seconds = round(time.perf_counter() - start, 1)
            log(f"  HNSW M={m} built in {seconds}s")
            add(f"HNSW M={m} efConstruction=40", seconds, index,
                {"efSearch": [16, 32, 64, 128, 256]}, set_ef, exact)  # fmt: skip
            del index
        out["skipped"] = "IVF-SQ8/PQ and other HNSW M: over the time bound at this size"
        return out

    ef_values = [16, 32, 64, 128, 256]
    for m in (16, 32):
        index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        start = time.perf_counter()
        index.add(embeddings)
        seconds = round(time.perf_counter() - start, 1)
        add(f"HNSW M={m} efConstruction=40", seconds, index, {"efSearch": ef_values}, set_ef,
            exact)  # fmt: skip
        if m == 32:
            # What a content graph built by searching this index for every movie would cost.
            sample = embeddings[np.random.default_rng(SEED).choice(n, min(n, 2000), replace=False)]
            index.hnsw.efSearch = 102
            start = time.perf_counter()
            index.search(sample, 51)
            per_movie = (time.perf_counter() - start) / sample.shape[0]
            out["graph_by_hnsw_search_estimate_seconds"] = round(per_movie * n, 1)
        del index

    nlist = max(1, min(int(np.sqrt(n)), n // 39))
    start = time.perf_counter()
    kmeans = faiss.Kmeans(dim, nlist, niter=10, seed=SEED, spherical=True,
                          max_points_per_centroid=32)  # fmt: skip
    kmeans.train(embeddings)
    quantizer = faiss.IndexFlatIP(dim)
    quantizer.add(kmeans.centroids)
    kmeans_seconds = time.perf_counter() - start
    probes = [p for p in (4, 8, 16, 32, 64, 128) if p <= nlist]
    variants: list[tuple[str, Callable[[], Any]]] = [
        (f"IVF{nlist},Flat", lambda: faiss.IndexIVFFlat(quantizer, dim, nlist,
                                                        faiss.METRIC_INNER_PRODUCT)),
        (f"IVF{nlist},SQ8", lambda: faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)),
        (f"IVF{nlist},PQ48", lambda: faiss.IndexIVFPQ(quantizer, dim, nlist, 48, 8,
                                                      faiss.METRIC_INNER_PRODUCT)),
    ]  # fmt: skip
    for name, make in variants:
        start = time.perf_counter()
        index = make()
        sample = embeddings[np.random.default_rng(SEED).choice(n, min(n, 65_536), replace=False)]
        index.train(sample)  # the coarse quantizer is already trained; this trains codes
        index.add(embeddings)
        seconds = round(time.perf_counter() - start + kmeans_seconds, 1)
        add(name, seconds, index, {"nprobe": probes}, set_probe, exact)
        del index
    out["ivf_kmeans_seconds"] = round(kmeans_seconds, 1)
    return out


def graph_study(run_dir: Path, probes: tuple[int, ...] = (4, 8, 16)) -> JsonDict:
    """The 50-neighbour content graph built three ways on one run's embeddings: a search of an
    HNSW index (M=32) for every movie, and k-means cells compared by BLAS at several probes;
    build seconds and recall@50 against exact search on 300 sampled movies."""
    import faiss

    from recsys_gql.artifacts import ArtifactDir
    from recsys_gql.recsys.content import ContentGraph, read_index

    artifacts = ArtifactDir.open(run_dir)
    embeddings = artifacts.array("embeddings.npy")
    out: JsonDict = {"movies": int(embeddings.shape[0]), "load_average_at_start": load_average()}
    spec = artifacts.manifest.content_index
    if spec is not None and spec.kind == "hnsw":
        index, built = read_index(run_dir / "content.faiss"), "the run's own index"
    else:
        start = time.perf_counter()
        index = faiss.IndexHNSWFlat(embeddings.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        index.add(embeddings)
        built = f"built for this study in {time.perf_counter() - start:.1f}s"
    index.hnsw.efSearch = 64
    start = time.perf_counter()
    graph = ContentGraph.build(index, embeddings, 50)  # widens efSearch to 102 for k=51
    out["hnsw_search"] = {
        "index": built,
        "seconds": round(time.perf_counter() - start, 1),
        "recall_at_50": graph_recall(embeddings, graph.neighbors, 300),
    }
    log(f"  graph by HNSW search: {out['hnsw_search']}")
    for probe in probes:
        start = time.perf_counter()
        graph = ContentGraph.build_approximate(embeddings, 50, probe=probe)
        seconds = round(time.perf_counter() - start, 1)
        out[f"kmeans_cells_probe_{probe}"] = {
            "cells": max(1, min(int(np.sqrt(embeddings.shape[0])), embeddings.shape[0] // 39)),
            "seconds": seconds,
            "recall_at_50": graph_recall(embeddings, graph.neighbors, 300),
        }
        log(f"  graph by cells, probe {probe}: {out[f'kmeans_cells_probe_{probe}']}")
    out["load_average_at_end"] = load_average()
    return out


# -- main -----------------------------------------------------------------------------------


def real_run_dir() -> Path | None:
    """``artifacts/current`` (or ``$RECSYS_GQL_ARTIFACTS_DIR/current``) when it exists."""
    root = os.environ.get("RECSYS_GQL_ARTIFACTS_DIR")
    current = (Path(root) if root else REPO_ROOT / "artifacts") / "current"
    return current if (current / "manifest.json").is_file() else None


def run(args: argparse.Namespace, command: str) -> JsonDict:
    """Every phase for every size, rewriting the result file after each."""
    payload: JsonDict = {
        "benchmark": "serving at scale: engine latency, index build, memory",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": {**machine_info(), "load_average_at_start": load_average()},
        "targets": {
            "recommend_p99_ms_at_1m": 50,
            "similar_p99_ms_at_1m": 10,
            "recall_at_10": 0.95,
        },
        "sizes": {},
    }
    real = real_run_dir()
    real_movies = None
    if real is not None:
        real_movies = json.loads((real / "manifest.json").read_text())["counts"]["movies"]
    for size in args.sizes:
        entry: JsonDict = {}
        payload["sizes"][str(size)] = entry
        if args.indexes_only:
            run_dir = real.resolve() if real is not None and size == real_movies else None
            run_dir = run_dir or args.workdir / f"synthetic-{size}"
            from recsys_gql.artifacts import ArtifactDir
            from recsys_gql.recsys.content import read_index

            artifacts = ArtifactDir.open(run_dir)
            spec = artifacts.manifest.content_index
            full = spec is None or spec.kind != "ivf"
            reuse = None
            if not full:
                seconds = artifacts.manifest.stages.get("index")
                reuse = (read_index(run_dir / "content.faiss"), seconds)
            log(f"{size:,}: comparing indexes on {run_dir}")
            entry["indexes"] = compare_indexes(
                artifacts.array("embeddings.npy"),
                args.queries,
                reuse=reuse,
                full=full,
                large_hnsw_ms=tuple(args.large_hnsw_m),
            )
            write_json_atomic(args.out, payload)
            continue
        if args.graph_study:
            run_dir = real.resolve() if real is not None and size == real_movies else None
            run_dir = run_dir or args.workdir / f"synthetic-{size}"
            log(f"{size:,}: graph study on {run_dir}")
            entry["graph_study"] = graph_study(run_dir)
            write_json_atomic(args.out, payload)
            continue
        if real is not None and size == real_movies:
            run_dir = real.resolve()
            entry["build"] = real_build(run_dir)
        else:
            if size == DEFAULT_SIZES[0] and real is None:
                log("no artifacts/current: the 9.7k size is synthetic (run `make data train`)")
            run_dir, entry["build"] = build_synthetic(size, args.workdir, args.rebuild)
        write_json_atomic(args.out, payload)
        log(f"{size:,}: serving from {run_dir}")
        entry["serve"] = serve_in_child(run_dir, args.calls, args.timeout, args.nprobe)
        write_json_atomic(args.out, payload)
        if args.queries > 0:
            from recsys_gql.artifacts import ArtifactDir

            embeddings = ArtifactDir.open(run_dir).array("embeddings.npy")
            log(f"{size:,}: comparing indexes")
            reuse = None
            built = entry["build"]
            full = built.get("index_spec", {}).get("kind") != "ivf"
            if not full:
                from recsys_gql.recsys.content import read_index

                reuse = (read_index(run_dir / "content.faiss"), built["index_build_seconds"])
            entry["indexes"] = compare_indexes(embeddings, args.queries, reuse=reuse, full=full)
            write_json_atomic(args.out, payload)
    payload["machine"]["load_average_at_end"] = load_average()
    return payload


def merge(parts: list[Path]) -> JsonDict:
    """One result from several runs (e.g. the 1M size run on its own): every size keeps the
    command, time, machine and load averages of the run that measured it."""
    merged: JsonDict = {"benchmark": None, "runs": [], "sizes": {}}
    for path in parts:
        part = json.loads(path.read_text())
        merged["benchmark"] = part["benchmark"]
        merged["targets"] = part["targets"]
        run_info = {k: part[k] for k in ("command", "timestamp", "machine")}
        run_info["sizes"] = list(part["sizes"])
        merged["runs"].append(run_info)
        for size, entry in part["sizes"].items():
            into = merged["sizes"].setdefault(size, {})
            commands = into.setdefault("run_commands", [])
            commands.append(part["command"])
            into.update(entry)
    merged["sizes"] = dict(sorted(merged["sizes"].items(), key=lambda item: int(item[0])))
    return merged


def parse_sizes(text: str) -> list[int]:
    """``9742,62423`` -> ``[9742, 62423]``; every size at least 100."""
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 100:
        raise argparse.ArgumentTypeError("sizes must be integers of at least 100")
    return sizes


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m bench.scale_serve", description=__doc__)
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES))
    parser.add_argument("--calls", type=int, default=300, help="timed calls per operation")
    parser.add_argument("--queries", type=int, default=300,
                        help="queries per index setting (0 skips the comparison)")  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--rebuild", action="store_true", help="rebuild cached synthetic runs")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per serve phase, s")
    parser.add_argument("--serve-run", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--indexes-only",
        action="store_true",
        help="only compare indexes on the (cached) runs of --sizes",
    )
    parser.add_argument("--nprobe", type=int, help="serve an IVF run with this many probes")
    parser.add_argument(
        "--large-hnsw-m",
        type=int,
        nargs="*",
        default=[],
        help="with --indexes-only on an IVF run: also build HNSW with these M (slow)",
    )
    parser.add_argument(
        "--graph-study",
        action="store_true",
        help="only compare content-graph builds on the (cached) runs of --sizes",
    )
    parser.add_argument(
        "--merge", type=Path, nargs="+", help="combine earlier result files into --out and exit"
    )
    args = parser.parse_args(args_list)
    if args.merge:
        write_json_atomic(args.out, merge(args.merge))
        log(f"merged {len(args.merge)} files into {args.out}")
        return 0
    if args.serve_run is not None:
        write_json_atomic(args.out, serve(args.serve_run, args.calls, args.nprobe))
        return 0
    command = shlex.join(["python", "-m", "bench.scale_serve", *args_list])
    payload = run(args, command)
    write_json_atomic(args.out, payload)
    log(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
