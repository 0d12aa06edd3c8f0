"""The phases of :mod:`bench.scale_train`, each run in its own child process::

    python -m bench.phases {generate,als,encode,warm,cold} --work DIR --result FILE [...]

Each writes one JSON object to ``--result``; the parent adds wall time, CPU time and peak RSS.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import write_json_atomic
from bench.synth import PRESETS, generate

JsonDict = dict[str, Any]


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> JsonDict:
    wall, cpu = _clock()
    return {"seconds": round(wall - start[0], 3), "cpu_seconds": round(cpu - start[1], 3)}


def phase_generate(args: argparse.Namespace) -> JsonDict:
    """Write the synthetic preset into ``<work>/data``."""
    start = _clock()
    counts = generate(PRESETS[args.preset], args.work / "data", seed=args.seed)
    sizes = {p.name: p.stat().st_size for p in sorted((args.work / "data").glob("*.csv"))}
    return {"counts": counts, "bytes": sizes, **_since(start)}


def phase_als(args: argparse.Namespace) -> JsonDict:
    """Load, build the rating matrix, fit ALS timing each iteration."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_info, threadpool_limits

    from recsys_gql.movielens import load_movielens
    from recsys_gql.recsys.arms.als import AlsArm, confidence_matrix
    from recsys_gql.recsys.vocab import IdVocab
    from training.config import TrainConfig
    from training.fit import rating_matrix

    config = TrainConfig().arm(AlsArm)
    start = _clock()
    data = load_movielens(args.work / "data")
    load = _since(start)
    start = _clock()
    items = IdVocab(np.sort(data.movies["movieId"].to_numpy(dtype=np.int64)))
    users = IdVocab.from_values(data.ratings["userId"].to_numpy())
    matrix = rating_matrix(data.ratings, users, items)
    build = {**_since(start), "shape": list(matrix.shape), "nnz": int(matrix.nnz)}
    del data
    ticks: list[tuple[float, float]] = []
    with threadpool_limits(limits=1, user_api="blas"):  # as the ALS arm does
        model = AlternatingLeastSquares(
            factors=config.factors, regularization=config.regularization, alpha=config.alpha,
            iterations=args.als_iterations, random_state=config.seed,
            num_threads=config.num_threads, calculate_training_loss=False,
        )  # fmt: skip
        start = _clock()
        model.fit(
            confidence_matrix(matrix, config.weighting),
            show_progress=False,
            callback=lambda *_: ticks.append(_clock()),
        )
        fit = _since(start)
    wall = np.diff([start[0], *(t[0] for t in ticks)])
    cpu = np.diff([start[1], *(t[1] for t in ticks)])
    return {
        "load": load,
        "matrix_build": build,
        "als": {
            "factors": config.factors,
            "iterations": args.als_iterations,
            "fit": fit,
            "iteration_seconds": [round(float(x), 3) for x in wall],
            "iteration_cpu_seconds": [round(float(x), 3) for x in cpu],
            "median_iteration_seconds": round(float(np.median(wall)), 3),
            "median_iteration_cpu_seconds": round(float(np.median(cpu)), 3),
            # the first iteration also pays for implicit's setup (transposes, initialisation)
        },
        "threadpools": [
            {k: p.get(k) for k in ("user_api", "internal_api", "num_threads")}
            for p in threadpool_info()
        ],
    }


def phase_encode(args: argparse.Namespace) -> JsonDict:
    """Cold encode throughput on a sample, then pre-fill the cache for the warm run."""
    from recsys_gql.movielens import load_movielens
    from training.config import TrainConfig
    from training.embed import EmbeddingCache, text_digests
    from training.pipeline import default_encoder
    from training.text import movie_texts

    config = TrainConfig()
    data = load_movielens(args.work / "data")
    texts = movie_texts(data, config.text.top_tags).tolist()
    rng = np.random.default_rng(args.seed)
    sample = [texts[i] for i in rng.choice(len(texts), size=args.encode_sample, replace=False)]
    encoder = default_encoder(config)
    start = _clock()
    encoder.encode(sample[:8])  # loads the model (and warms it up on 8 texts)
    load = _since(start)
    start = _clock()
    encoder.encode(sample)
    encode = _since(start)
    digests = text_digests(texts)
    unique, first = np.unique(digests, return_index=True)
    vectors = rng.standard_normal((unique.size, encoder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    EmbeddingCache(args.work / "cache", encoder.model_key).store(digests[np.sort(first)], vectors)
    return {
        "model_key": encoder.model_key,
        "catalog_texts": len(texts),
        "sample": args.encode_sample,
        "sample_mean_chars": round(float(np.mean([len(t) for t in sample])), 1),
        "catalog_mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
        "model_load_seconds": load["seconds"],
        "encode": encode,
        "texts_per_second": round(args.encode_sample / encode["seconds"], 2),
        "cache_prefilled_with": "random unit vectors (timing only)",
    }


def phase_pipeline(args: argparse.Namespace, *, warm: bool) -> JsonDict:
    """The whole ``train`` pipeline with the default config."""
    from training.config import TrainConfig
    from training.pipeline import train

    cache = args.work / ("cache" if warm else "cache-cold")
    cache.mkdir(parents=True, exist_ok=True)
    start = _clock()
    result = train(
        args.work / "data", args.work / "artifacts", TrainConfig(), cache_dir=cache,
        report=lambda line: print(f"  {line}", file=sys.stderr, flush=True), show_progress=False,
    )  # fmt: skip
    total = _since(start)
    return {
        "total_seconds": total["seconds"],
        "total_cpu_seconds": total["cpu_seconds"],
        "stages": {
            s.name: {
                "seconds": round(s.seconds, 3),
                "cpu_seconds": round(s.cpu_seconds, 3),
                "peak_rss_mb": round(s.peak_rss_mb, 1),
                "detail": s.detail if s.name != "export" else "",
            }
            for s in result.stages
        },
        "embeddings_encoded": result.embeddings_encoded,
        "embeddings_cached": result.embeddings_cached,
        "counts": result.manifest.counts,
        "arms": {
            name: {
                "status": r.status,
                "reason": r.reason,
                "details": {k: v for k, v in r.details.items() if k != "tuning"},
            }
            for name, r in result.manifest.arms.items()
        },
        "ranker": {
            "status": result.manifest.ranker.status,
            "reason": result.manifest.ranker.reason,
            "details": {
                k: v
                for k, v in result.manifest.ranker.details.items()
                if k in ("rounds", "rows", "users", "groups")
            },
        },
        "config_digest": TrainConfig().digest(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run one phase and write its JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.phases")
    parser.add_argument("phase", choices=["generate", "als", "encode", "warm", "cold"])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--preset", default="25m")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--encode-sample", type=int, default=1000)
    parser.add_argument("--als-iterations", type=int, default=5)
    args = parser.parse_args(argv)
    if args.phase == "generate":
        record = phase_generate(args)
    elif args.phase == "als":
        record = phase_als(args)
    elif args.phase == "encode":
        record = phase_encode(args)
    else:
        record = phase_pipeline(args, warm=args.phase == "warm")
    write_json_atomic(args.result, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
