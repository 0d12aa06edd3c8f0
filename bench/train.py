"""Benchmark of the training pipeline on the real MovieLens ml-latest-small.

Run from the repository root::

    python -m bench.train [--source ../shared/data] [--out bench/results/train.json]

The benchmark works in a throw-away temporary folder:

1. ``fetch`` copies the data from ``--source`` (default: ``$RECSYS_GQL_DATA_SOURCE``, else
   ``../shared/data`` relative to the repository root) into ``<tmp>/raw``;
2. ``train`` runs with a fresh, empty embedding cache (the *cold* run: every movie text is
   encoded);
3. ``train`` runs again with the same, now warm, cache (the *warm* run: nothing is encoded).

For each run it records the wall time around the ``train`` call, every stage's seconds, peak
RSS and detail, the process peak RSS and the embedding counts, checks them against the targets
(cold ≤ 180 s, warm ≤ 30 s), writes everything with machine and library information to a JSON
file (atomically) and prints a short table.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import machine_info as shared_machine_info
from bench.common import write_json_atomic
from recsys_gql.errors import RecsysError
from training.config import TrainConfig
from training.fetch import FetchResult, fetch
from training.pipeline import TrainResult, library_versions, train

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "train.json"
SOURCE_ENV = "RECSYS_GQL_DATA_SOURCE"
TARGETS_SECONDS: dict[str, float] = {"cold": 180.0, "warm": 30.0}

JsonDict = dict[str, Any]


def default_source() -> str:
    """``$RECSYS_GQL_DATA_SOURCE`` when set, else ``../shared/data`` beside the repository."""
    return os.environ.get(SOURCE_ENV) or str(DEFAULT_SOURCE)


def process_peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    divisor = 2**20 if sys.platform == "darwin" else 2**10  # macOS reports bytes
    return round(peak / divisor, 1)


def machine_info() -> JsonDict:
    """CPU count, memory, platform, Python version and torch's intra-op thread count."""
    import torch  # imported here: it is heavy, and the pipeline loads it anyway

    return {**shared_machine_info(), "torch_threads": torch.get_num_threads()}


def run_summary(result: TrainResult, wall_seconds: float, target: float) -> JsonDict:
    """The JSON record of one ``train`` call."""
    stages = {
        stage.name: {
            "seconds": round(stage.seconds, 3),
            "cpu_seconds": round(stage.cpu_seconds, 3),
            "peak_rss_mb": round(stage.peak_rss_mb, 1),
            "detail": stage.detail,
        }
        for stage in result.stages
    }
    staged = sum(stage.seconds for stage in result.stages)
    return {
        "total_seconds": round(wall_seconds, 3),
        "staged_cpu_seconds": round(sum(stage.cpu_seconds for stage in result.stages), 3),
        # Time inside train() but outside any stage, chiefly loading the sentence model.
        "unstaged_seconds": round(wall_seconds - staged, 3),
        "stages": stages,
        "max_stage_peak_rss_mb": round(max(s.peak_rss_mb for s in result.stages), 1),
        # ru_maxrss never decreases: the warm figure is the peak of the whole process so far.
        "process_peak_rss_mb": process_peak_rss_mb(),
        "embeddings_encoded": result.embeddings_encoded,
        "embeddings_cached": result.embeddings_cached,
        "run_id": result.manifest.run_id,
        "target_seconds": target,
        "target_met": wall_seconds <= target,
    }


def timed_train(
    data_dir: Path, out_root: Path, config: TrainConfig, cache_dir: Path, label: str
) -> tuple[TrainResult, float]:
    """Run ``train`` once, sending its stage lines to stderr; return it and its wall time."""

    def report(line: str) -> None:
        print(f"  {label}: {line}", file=sys.stderr, flush=True)

    print(f"{label} run ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    result = train(
        data_dir, out_root, config, cache_dir=cache_dir, report=report, show_progress=False
    )
    return result, time.perf_counter() - start


def format_table(runs: dict[str, JsonDict]) -> str:
    """A short plain-text table: seconds per stage for each run, totals and targets."""
    labels = list(runs)
    names: list[str] = []
    for run in runs.values():
        names.extend(n for n in run["stages"] if n not in names)

    def row(name: str, cells: list[str]) -> str:
        return f"{name:<16}" + "".join(f"{cell:>12}" for cell in cells)

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}s"

    header = row("stage", labels)
    rule = "-" * len(header)
    lines = [header, rule]
    for name in names:
        lines.append(
            row(name, [seconds(runs[r]["stages"].get(name, {}).get("seconds")) for r in labels])
        )
    lines.append(row("(unstaged)", [seconds(runs[r]["unstaged_seconds"]) for r in labels]))
    lines.append(rule)
    lines.append(row("total", [seconds(runs[r]["total_seconds"]) for r in labels]))
    lines.append(row("CPU (stages)", [seconds(runs[r]["staged_cpu_seconds"]) for r in labels]))
    lines.append(
        row(
            "target",
            [
                f"≤{runs[r]['target_seconds']:.0f}s {'ok' if runs[r]['target_met'] else 'MISS'}"
                for r in labels
            ],
        )
    )
    lines.append(row("peak RSS", [f"{runs[r]['process_peak_rss_mb']:.0f} MB" for r in labels]))
    lines.append(
        row(
            "encoded/cached",
            [f"{runs[r]['embeddings_encoded']}/{runs[r]['embeddings_cached']}" for r in labels],
        )
    )
    return "\n".join(lines)


def benchmark(
    source: str, out: Path, command: list[str], warm_cache: Path | None = None
) -> JsonDict:
    """Fetch, train cold, train warm, write ``out`` and return what was written. With
    ``warm_cache`` (an embedding cache that already holds every text), only the warm run."""
    config = TrainConfig()
    started = datetime.now(UTC)
    runs: dict[str, JsonDict] = {}
    with tempfile.TemporaryDirectory(prefix="recsys-gql-bench-") as tmp_name:
        tmp = Path(tmp_name)
        fetched: FetchResult = fetch(tmp / "raw", source)
        cache_dir = warm_cache or tmp / "cache"
        cache_dir.mkdir(exist_ok=True)  # fresh and empty: the first run encodes every text
        artifacts = tmp / "artifacts"
        if warm_cache is None:
            cold, seconds = timed_train(fetched.destination, artifacts, config, cache_dir, "cold")
            runs["cold"] = run_summary(cold, seconds, TARGETS_SECONDS["cold"])
        warm, warm_seconds = timed_train(fetched.destination, artifacts, config, cache_dir, "warm")
        runs["warm"] = run_summary(warm, warm_seconds, TARGETS_SECONDS["warm"])
        data = {
            "source": fetched.source,
            "official_release": fetched.official_release,
            "has_overviews": fetched.has_overviews,
            "sha256": warm.manifest.data.sha256,
            "counts": warm.manifest.counts,
        }
    payload: JsonDict = {
        "benchmark": "training pipeline, ml-latest-small, cold then warm embedding cache"
        if warm_cache is None
        else "training pipeline, ml-latest-small, warm embedding cache",
        "timestamp": started.isoformat(timespec="seconds"),
        "command": shlex.join(command),
        "machine": machine_info(),
        "libraries": library_versions(),
        "config_digest": config.digest(),
        "data": data,
        "targets_seconds": dict(TARGETS_SECONDS),
        "targets_met": {name: run["target_met"] for name, run in runs.items()},
        "runs": runs,
    }
    write_json_atomic(out, payload)
    return payload


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.train",
        description="Benchmark the training pipeline (cold and warm embedding cache).",
    )
    parser.add_argument(
        "--source",
        default=None,
        help=f"MovieLens folder or zip (default: ${SOURCE_ENV}, else {DEFAULT_SOURCE})",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"JSON result file (default: {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--warm-cache",
        type=Path,
        default=None,
        help="an embedding cache already holding every text: time only the warm run",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the benchmark and print a summary table."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(args_list)
    source: str = args.source or default_source()
    command = [Path(sys.executable).name, "-m", "bench.train", *args_list]
    try:
        payload = benchmark(source, args.out, command, args.warm_cache)
    except RecsysError as exc:
        print(f"bench.train: error: {exc.message}", file=sys.stderr)
        return 2
    machine = payload["machine"]
    print(
        f"ml-latest-small training benchmark — {machine['cpu_count']} CPUs, "
        f"{machine['memory_gb']} GB, torch threads {machine['torch_threads']}, "
        f"Python {machine['python']}"
    )
    print(format_table(payload["runs"]))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
