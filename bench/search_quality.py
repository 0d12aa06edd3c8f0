"""Which encoder should encode ``searchMovies`` queries: retrieval quality and batch speed.

Run from the repository root (after ``make train``)::

    python -m bench.search_quality [--rounds 5] [--out bench/results/search_quality.json]

1. **Quality.** Every query of the labelled search set (:mod:`bench.search_set`) is encoded
   by each encoder variant of ``bench.embed`` and searched in the *served* index
   (``artifacts/current``, whose movies were embedded by the run's own encoder). Reported per
   variant, overall and per kind of query: recall@10 (the labelled movie among the first 10)
   and MRR (1/rank within the first 100, else 0), with the share of queries whose top 10
   equals the run's own encoder's. A variant may serve queries only when its recall@10 is at
   least 99% of the run's own encoder's (:data:`KEEP_SHARE`).
2. **Batches.** Each query is also answered inside batches of 32 by the run's own encoder,
   and compared with its lone answer (same top 10, largest score difference).
3. **Speed.** For torch fp32 and ONNX int8, each intra-op thread count (``--threads``) and
   two sizes of encoder call (:data:`INNER_BATCHES`), batches of 1, 8 and 32 queries from the
   set are encoded in rounds that rotate the order of the encoders (the machine is shared:
   compare within a run). Wall and CPU milliseconds per batch (medians) and queries/s.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.common import JsonDict, machine_info, write_json_atomic
from bench.embed import BASELINE, VARIANTS, Variant
from bench.search_set import DEFAULT_DATA, LabelledQuery, load_search_set

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "search_quality.json"
KEEP_SHARE = 0.99
"""A faster encoder must keep at least this share of the baseline's recall@10."""
DEPTH = 100
BATCH_SIZES = (1, 8, 32)


def make_encoder(variant: Variant, threads: int) -> Any:
    """A sentence encoder of ``variant`` computing on ``threads`` intra-op threads."""
    from recsys_gql.recsys.content import SentenceEncoder

    backend: Any = variant.backend
    return SentenceEncoder(max_seq_length=variant.max_seq_length, backend=backend, threads=threads)


def ranks(index: Any, vectors: npt.NDArray[np.float32], movie_rows: Sequence[int]) -> list[int]:
    """1-based rank of each query's labelled movie in the index's first :data:`DEPTH` (0:
    not there)."""
    _, found = index.search(vectors, DEPTH)
    out = []
    for row, hits in zip(movie_rows, found, strict=True):
        where = np.flatnonzero(hits == row)
        out.append(int(where[0]) + 1 if where.size else 0)
    return out


def scores(found: Sequence[int]) -> JsonDict:
    """recall@10 and MRR of a list of ranks."""
    array = np.asarray(found)
    return {
        "queries": int(array.size),
        "recall_at_10": round(float(((array > 0) & (array <= 10)).mean()), 4),
        "mrr": round(float(np.where(array > 0, 1.0 / np.maximum(array, 1), 0.0).mean()), 4),
    }


def quality(engine: Any, queries: Sequence[LabelledQuery], encoders: dict[str, Any]) -> JsonDict:
    """Recall and MRR per variant (overall and per kind), and top-10 agreement with the
    baseline."""
    rows = [int(engine.movies.index(q.movie_id)) for q in queries]
    texts = [q.query for q in queries]
    kinds = sorted({q.kind for q in queries})
    tops: dict[str, npt.NDArray[np.int64]] = {}
    report: JsonDict = {}
    for name, encoder in encoders.items():
        vectors = encoder.encode(texts)
        found = ranks(engine.index, vectors, rows)
        tops[name] = engine.index.search(vectors, 10)[1]
        report[name] = {
            "all": scores(found),
            **{
                k: scores([r for r, q in zip(found, queries, strict=True) if q.kind == k])
                for k in kinds
            },
        }
    base = tops[BASELINE.name]
    baseline_recall = report[BASELINE.name]["all"]["recall_at_10"]
    for name, entry in report.items():
        entry["same_top10_as_baseline"] = round(float((tops[name] == base).all(axis=1).mean()), 4)
        shared = [len(set(a) & set(b)) / 10 for a, b in zip(tops[name], base, strict=True)]
        entry["top10_overlap_with_baseline"] = round(float(np.mean(shared)), 4)
        share = entry["all"]["recall_at_10"] / baseline_recall if baseline_recall else 0.0
        entry["recall_share_of_baseline"] = round(share, 4)
        entry["may_serve_queries"] = share >= KEEP_SHARE
    return report


def batched_against_lone(engine: Any, texts: Sequence[str], batch: int = 32) -> JsonDict:
    """How a query answered inside a batch compares with its lone answer (the engine's
    ``search_many`` against ``search``)."""
    same, worst = 0, 0.0
    for start in range(0, len(texts), batch):
        chunk = list(texts[start : start + batch])
        for text, hits in zip(chunk, engine.search_many(chunk, 10), strict=True):
            alone = engine.search(text, 10)
            same += [h.movie_id for h in hits] == [h.movie_id for h in alone]
            worst = max(worst, *(abs(a.score - b.score) for a, b in zip(hits, alone)))  # noqa: B905
    return {"queries": len(texts), "same_top10": same, "largest_score_difference": worst}


SPEED_VARIANTS = ("torch-fp32", "onnx-int8")
"""The contenders timed: the encoder the movies were embedded with, and the fastest variant."""
INNER_BATCHES = (8, 64)
"""Queries per encoder call inside one batch: the served ``QUERY_BATCH_SIZE`` and the
library's usual 64 (one call for a whole batch, padded to its longest query)."""


def speed(variants: Sequence[Variant], threads: Sequence[int], texts: Sequence[str],
          rounds: int) -> JsonDict:  # fmt: skip
    """Median wall and CPU milliseconds per batch for each (variant, threads, inner batch,
    batch size), in rounds that rotate the order of the encoders. CPU time (every thread of
    this process) is the steadier figure on a shared machine."""
    import torch

    from recsys_gql.recsys.content import SentenceEncoder

    chosen = [v for v in variants if v.name in SPEED_VARIANTS]
    encoders: dict[tuple[str, int, int], Any] = {}
    for v in chosen:
        for t in threads:
            for inner in INNER_BATCHES:
                backend: Any = v.backend
                encoders[(v.name, t, inner)] = SentenceEncoder(
                    max_seq_length=v.max_seq_length, backend=backend, threads=t, batch_size=inner
                )
    for key, encoder in encoders.items():
        torch.set_num_threads(key[1])
        encoder.encode(["warm-up"])
    wall: dict[tuple[str, int, int, int], list[float]] = {}
    cpu: dict[tuple[str, int, int, int], list[float]] = {}
    keys = list(encoders)
    for round_ in range(rounds):
        for k in range(len(keys)):
            name, t, inner = keys[(k + round_) % len(keys)]
            torch.set_num_threads(t)  # torch's threads are per process; ONNX's per session
            for size in BATCH_SIZES:
                for start in range(0, 128, size):
                    chunk = list(texts[start : start + size])
                    began, began_cpu = time.perf_counter(), time.process_time()
                    encoders[(name, t, inner)].encode(chunk)
                    wall.setdefault((name, t, inner, size), []).append(time.perf_counter() - began)
                    cpu.setdefault((name, t, inner, size), []).append(
                        time.process_time() - began_cpu
                    )
    out: JsonDict = {}
    for (name, t, inner, size), values in sorted(wall.items()):
        ms = 1000 * float(np.median(values))
        cpu_ms = 1000 * float(np.median(cpu[(name, t, inner, size)]))
        out.setdefault(name, {}).setdefault(f"threads_{t}", {}).setdefault(f"inner_{inner}", {})[
            f"batch_{size}"
        ] = {
            "median_ms": round(ms, 2),
            "cpu_ms": round(cpu_ms, 2),
            "cpu_ms_per_query": round(cpu_ms / size, 2),
            "queries_per_s": round(size * 1000 / ms, 1),
            "calls": len(values),
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and write the JSON; 0 when it ran."""
    parser = argparse.ArgumentParser(prog="python -m bench.search_quality")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--artifacts", type=Path, default=REPO_ROOT / "artifacts" / "current")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    from recsys_gql.recsys.engine import Engine

    engine = Engine.load(args.artifacts)
    served = engine.manifest.models.get("embedding_key")
    queries = load_search_set(args.data)
    texts = [q.query for q in queries]
    load_before = [round(x, 2) for x in os.getloadavg()]
    encoders = {v.name: make_encoder(v, 1) for v in VARIANTS}
    if served is not None and encoders[BASELINE.name].model_key != served:
        print(f"the run's movies were embedded with {served}, not {BASELINE.name}", file=sys.stderr)
        return 2
    started = datetime.now(UTC)
    report: JsonDict = {
        "benchmark": "search_quality",
        "created_at": started.isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench.search_quality", *(argv or sys.argv[1:])]),
        "machine": {**machine_info(), "load_average_before": load_before},
        "run_id": engine.manifest.run_id,
        "movies_embedded_with": served,
        "search_set": {
            "queries": len(queries),
            "kinds": {
                k: sum(q.kind == k for q in queries) for k in sorted({q.kind for q in queries})
            },
        },
        "rule": f"a variant may encode queries when its recall@10 >= {KEEP_SHARE:.0%} of "
        f"{BASELINE.name}'s",
        "quality": quality(engine, queries, encoders),
        "batched_against_lone": batched_against_lone(engine, texts),
        "speed": speed(VARIANTS, args.threads, texts, args.rounds),
    }
    report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    write_json_atomic(args.out, report)
    for name, entry in report["quality"].items():
        print(
            f"{name:<20} recall@10 {entry['all']['recall_at_10']:.4f}  MRR "
            f"{entry['all']['mrr']:.4f}  share {entry['recall_share_of_baseline']:.4f}  "
            f"same top10 {entry['same_top10_as_baseline']:.3f}  "
            f"overlap {entry['top10_overlap_with_baseline']:.3f}"
        )
    for name, by_threads in report["speed"].items():
        for t, by_inner in by_threads.items():
            for inner, sizes in by_inner.items():
                line = "  ".join(
                    f"{s}: {v['median_ms']} ms ({v['cpu_ms_per_query']} cpu ms/q)"
                    for s, v in sizes.items()
                )
                print(f"{name:<12} {t:<10} {inner:<9} {line}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
