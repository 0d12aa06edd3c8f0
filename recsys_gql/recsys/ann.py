"""The content index: which FAISS index a catalog gets, how it is built, and how it is loaded.

Every index holds L2-normalised movie embeddings under the inner-product metric, so scores
are cosine similarities. Three kinds are supported:

* ``flat`` (``IndexFlatIP``): exact; a query reads the whole matrix, so its cost grows
  linearly with the catalog (about 1 ms per 10k movies on one core).
* ``hnsw`` (``IndexHNSWFlat``): a navigable small-world graph; sub-millisecond queries, but
  a slow, sequential build (15 minutes for a million movies on 2 cores at M=16) whose recall
  fell to 0.76 at a million synthetic movies with efConstruction 40.
* ``ivf`` (``IndexIVFFlat``): k-means cells, of which ``nprobe`` are scanned per query; builds
  with BLAS in minutes; recall@10 0.999 at 1M movies with 64 of 1024 lists probed.

``auto`` (the default) picks by catalog size with :func:`choose_index`; the choice comes
from ``bench/scale_serve.py`` (see BENCHMARKS.md, "Serving at scale"). The chosen
:class:`IndexSpec` is recorded in the artifact manifest, and the engine loads whatever kind
the manifest names, refusing an index file of another kind.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from recsys_gql.index_spec import FAISS_TYPES, IndexSpec

FloatMatrix = npt.NDArray[np.float32]
IndexChoice = Literal["auto", "flat", "hnsw", "ivf"]

FLAT_MAX_ITEMS = 50_000
"""``auto`` keeps exact search up to this many movies: an exact query costs about 1 ms per
10k movies on one core, so below this size it is exact, fast enough and builds instantly."""

# Above FLAT_MAX_ITEMS ``auto`` picks IVF with about sqrt(n) lists and 1/16 of them probed.
# Measured (BENCHMARKS.md): at 62k movies IVF249 nprobe 16 gave recall@10 0.997 at 0.31 ms
# and built in 2.6 s (HNSW M=32: 0.993 at efSearch 128, 0.63 ms, 83 s); at 1M IVF1024
# nprobe 64 gave 0.999 at 6.5 ms and built in 106 s, while HNSW M=16 (efConstruction 40)
# took 924 s and reached only 0.76 at efSearch 256. Caveat: on the real 9.7k embeddings IVF
# needed far more probes than HNSW (flat is used there); revisit with real large catalogs.


def choose_index(n_items: int, choice: IndexChoice = "auto", **params: Any) -> IndexSpec:
    """The index for a catalog of ``n_items`` movies: ``choice`` itself unless it is ``auto``,
    which means exact search up to :data:`FLAT_MAX_ITEMS` movies and IVF above, with about
    ``sqrt(n)`` lists of which 1/16 are probed (see BENCHMARKS.md, "Serving at scale")."""
    if n_items < 0:
        raise ValueError(f"n_items must be non-negative, got {n_items}")
    if choice != "auto":
        return IndexSpec(kind=choice, reason=f"configured: {choice}", **params)
    if n_items <= FLAT_MAX_ITEMS:
        reason = f"auto: {n_items:,} movies <= {FLAT_MAX_ITEMS:,}, exact search"
        return IndexSpec(kind="flat", reason=reason, **params)
    nlist = max(1, round(n_items**0.5))
    nprobe = max(8, nlist // 16)
    params = {**params, "ivf_nlist": nlist, "ivf_nprobe": nprobe}
    reason = f"auto: {n_items:,} movies > {FLAT_MAX_ITEMS:,}, IVF{nlist} nprobe {nprobe}"
    return IndexSpec(kind="ivf", reason=reason, **params)


def ivf_cells(spec: IndexSpec, n_items: int) -> int:
    """Number of IVF cells actually used: ``spec.ivf_nlist``, capped so that k-means has at
    least 39 training points per cell (FAISS's own minimum)."""
    return max(1, min(spec.ivf_nlist, n_items // 39 or 1))


def build(embeddings: FloatMatrix, spec: IndexSpec, *, seed: int = 42) -> Any:
    """Build the FAISS index ``spec`` describes over ``embeddings`` (unit rows)."""
    import faiss

    vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] == 0:
        raise ValueError(f"need a non-empty (n, dim) matrix, got shape {vectors.shape}")
    dim = vectors.shape[1]
    index: Any
    if spec.kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif spec.kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = spec.hnsw_ef_construction
    else:
        nlist = ivf_cells(spec, vectors.shape[0])
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        # k-means on a sample is as good as on everything and bounded in time.
        index.cp.max_points_per_centroid = 64
        index.train(vectors)
    index.add(vectors)
    configure(index, spec)
    return index


def configure(index: Any, spec: IndexSpec) -> Any:
    """Check that ``index`` is of the kind ``spec`` names and apply its query parameters."""
    found = type(index).__name__
    if found != spec.faiss_type:
        raise ValueError(f"the index is a {found}, the manifest says {spec.faiss_type}")
    if spec.kind == "hnsw":
        index.hnsw.efSearch = spec.hnsw_ef_search
    elif spec.kind == "ivf":
        index.nprobe = min(spec.ivf_nprobe, int(index.nlist))
    return index


def infer_spec(index: Any) -> IndexSpec:
    """The spec of an index loaded without one (runs written before specs were recorded)."""
    found = type(index).__name__
    for kind, name in FAISS_TYPES.items():
        if name == found:
            if kind == "hnsw":
                return IndexSpec(kind=kind, hnsw_ef_search=int(index.hnsw.efSearch))
            if kind == "ivf":
                return IndexSpec(kind=kind, ivf_nlist=int(index.nlist), ivf_nprobe=index.nprobe)
            return IndexSpec(kind=kind)
    raise ValueError(f"unsupported content index type {found}")


def search_batched(
    index: Any, queries: FloatMatrix, k: int, *, batch: int = 16_384
) -> tuple[FloatMatrix, npt.NDArray[np.int64]]:
    """``index.search`` over many queries in batches, so memory for results stays bounded."""
    n = queries.shape[0]
    scores = np.empty((n, k), dtype=np.float32)
    found = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, batch):
        chunk = np.ascontiguousarray(queries[start : start + batch], dtype=np.float32)
        scores[start : start + len(chunk)], found[start : start + len(chunk)] = index.search(
            chunk, k
        )
    return scores, found


class widened:  # noqa: N801 - used like a function: ``with widened(index, k): ...``
    """Temporarily widen an HNSW index's query beam to at least ``2 * k`` (a beam narrower
    than the number of results asked for loses recall); other kinds are left as they are."""

    def __init__(self, index: Any, k: int) -> None:
        self.index = index
        self.k = k
        self._saved: int | None = None

    def __enter__(self) -> Any:
        hnsw = getattr(self.index, "hnsw", None)
        if hnsw is not None:
            self._saved = int(hnsw.efSearch)
            hnsw.efSearch = max(self._saved, 2 * self.k)
        return self.index

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            self.index.hnsw.efSearch = self._saved


def knn_graph(
    embeddings: FloatMatrix,
    k: int,
    *,
    cells: int | None = None,
    probe: int = 6,
    seed: int = 42,
    ivf: Any = None,
    report: Any = None,
) -> tuple[FloatMatrix, npt.NDArray[np.int64]]:
    """Approximate ``k`` nearest other movies of every movie, with their similarities.

    Searching an index once per movie costs a million index queries at a million movies;
    here FAISS k-means splits the catalog into ``cells`` (default ``sqrt(n)``), and each cell's
    members are compared, with one BLAS matrix product, to the members of the ``probe`` cells
    whose centres are closest to the cell's centre (its own first). Dense products run at
    BLAS speed, so the whole graph costs about ``n x probe x n/cells`` similarity evaluations.
    A neighbour is missed only when it sits in a cell outside those ``probe``; the benchmark
    measures recall against exact search. Results are best first; a movie never lists itself.
    Missing slots (tiny catalogs) are ``-1`` with similarity ``-inf``. Given the catalog's
    IVF index as ``ivf``, its lists are the cells (no k-means and no assignment pass).
    """
    import faiss

    vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, dim = vectors.shape
    if ivf is not None:
        cells, order, bounds, centroids, quantizer = _ivf_cells(ivf)
    else:
        cells = max(1, min(cells or int(np.sqrt(n)), n // 39 or 1))
        kmeans = faiss.Kmeans(
            dim, cells, niter=10, seed=seed, spherical=True, max_points_per_centroid=32
        )
        kmeans.train(vectors)
        quantizer = kmeans.index
        _, assign = quantizer.search(vectors, 1)
        assign = assign.ravel()
        order = np.argsort(assign, kind="stable")
        bounds = np.searchsorted(assign[order], np.arange(cells + 1))
        centroids = np.ascontiguousarray(kmeans.centroids, dtype=np.float32)
    probe = max(1, min(probe, cells))
    _, near = quantizer.search(centroids, probe)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    found = np.full((n, k), -1, dtype=np.int64)
    for cell in range(cells):
        members = order[bounds[cell] : bounds[cell + 1]]
        if members.size == 0:
            continue
        pool = np.concatenate([order[bounds[c] : bounds[c + 1]] for c in near[cell] if c >= 0])
        take = min(k + 1, pool.size)
        # FAISS's brute-force kNN: one BLAS product and a heap per row, on all cores.
        sims, hits = faiss.knn(vectors[members], vectors[pool], take, faiss.METRIC_INNER_PRODUCT)
        hits = pool[hits]
        is_self = hits == members[:, None]
        keep = np.argsort(is_self, axis=1, kind="stable")[:, : min(k, take)]
        scores[members, : keep.shape[1]] = np.take_along_axis(sims, keep, axis=1)
        found[members, : keep.shape[1]] = np.take_along_axis(hits, keep, axis=1)
        if report is not None and cell % 256 == 0:
            report(cell, cells)
    found[~np.isfinite(scores)] = -1
    return scores, found


def _ivf_cells(index: Any) -> tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int64], Any, Any]:
    """An IVF index's lists as cells: (count, ids grouped by list, list bounds, centroids,
    the coarse quantizer), read from its inverted lists."""
    import faiss

    ivf: Any = faiss.extract_index_ivf(index)
    lists: Any = ivf.invlists
    sizes = np.array([lists.list_size(i) for i in range(ivf.nlist)], dtype=np.int64)
    ids = [
        faiss.rev_swig_ptr(lists.get_ids(i), int(size)).astype(np.int64)
        for i, size in enumerate(sizes)
    ]
    order = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    centroids = ivf.quantizer.reconstruct_n(0, ivf.nlist)
    return int(ivf.nlist), order, bounds, centroids, ivf.quantizer
