"""Recall@10 of a built catalog's IVF index at chosen probe counts, against exact search.

    python -m bench.ivf_recall [--build DIR] [--nprobe 32 62] [--queries 200]

``DIR`` is a catalog built by ``python -m bench.scale_serve`` (default: the 1M-movie one in its
cache). Queries are catalog vectors, so each query's own row is dropped from both answers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import faiss
import numpy as np

DEFAULT_BUILD = Path("/tmp/recsys-gql-scale-serve/synthetic-1000000")
OUT = Path(__file__).resolve().parent / "results" / "scale_serve_1m_recall_nprobe62.json"


def main() -> None:
    """Measure and write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.ivf_recall")
    parser.add_argument("--build", type=Path, default=DEFAULT_BUILD)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[32, 62])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    embeddings = np.load(args.build / "embeddings.npy", mmap_mode="r")
    index = faiss.read_index(str(args.build / "content.faiss"))
    ivf = faiss.extract_index_ivf(index)
    rows = np.sort(np.random.default_rng(7).choice(len(embeddings), args.queries, replace=False))
    queries = np.ascontiguousarray(embeddings[rows], dtype=np.float32)
    exact_index = faiss.IndexFlatIP(embeddings.shape[1])
    for start in range(0, len(embeddings), 100_000):
        exact_index.add(np.ascontiguousarray(embeddings[start : start + 100_000], np.float32))
    _, exact = exact_index.search(queries, 11)
    results = {}
    for nprobe in args.nprobe:
        ivf.nprobe = nprobe
        began = time.perf_counter()
        _, approx = index.search(queries, 11)
        ms = (time.perf_counter() - began) / len(queries) * 1000
        recall = float(
            np.mean([len(set(a[1:]) & set(e[1:])) / 10 for a, e in zip(approx, exact, strict=True)])
        )
        results[str(nprobe)] = {"recall_at_10": recall, "ms_per_query_one_thread": ms}
        print(f"nprobe {nprobe}: recall@10 {recall:.4f}, {ms:.2f} ms/query")
    payload = {"build": str(args.build), "nlist": ivf.nlist, "queries": args.queries, **results}
    args.out.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
