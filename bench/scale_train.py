"""Training at scale: the pipeline on the synthetic ``25m`` preset (162,541 users, 62,423 movies,
25,000,095 ratings). Run from the repository root::

    python -m bench.scale_train [--preset 25m] [--seed 42] [--threads 2] [--encode-sample 1000]
                                [--als-iterations 5] [--work DIR] [--cold]
                                [--out bench/results/train_25m.json]

Each phase runs in its own child process, so its peak RSS (``ru_maxrss`` of that child) and CPU
time are its own; BLAS/OpenMP thread counts are fixed for every child by ``--threads``:

1. ``generate``: ``bench.synth`` writes the preset into ``<work>/data``.
2. ``als``: load the ratings, build the CSR matrix (timed alone) and fit implicit's ALS with the
   default config for ``--als-iterations`` iterations, timing each iteration.
3. ``encode``: load the sentence model and encode a seeded random sample of ``--encode-sample``
   movie texts cold (no cache): model-load time and texts/s, extrapolated to the catalog.
   Then the embedding cache is pre-filled for every movie text with random unit vectors.
4. ``warm``: the whole ``train`` pipeline with that warm cache (the default config, 20 ALS
   iterations). Vector values change nothing timed here (a flat index costs the same for any
   vectors), but the artifacts' content arm is meaningless; they are thrown away.
5. ``cold`` (only with ``--cold``; about 15-40 minutes on 2 shared cores): the whole pipeline
   with an empty cache. Without it the cold figure is *estimated* as the warm run minus its
   embed stage, plus model load and the catalog's texts at the measured throughput.

Figures, the machine and the load average before and after each phase go to ``--out``.
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
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import machine_info, write_json_atomic

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "train_25m.json"
JsonDict = dict[str, Any]


def thread_env(threads: int) -> dict[str, str]:
    """Environment pinning every BLAS / OpenMP pool to ``threads`` (ALS itself holds BLAS to
    one thread and runs ``threads`` of its own: implicit's ``num_threads=0`` = all cores)."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    return {name: str(threads) for name in names}


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (the machine is shared)."""
    return [round(x, 2) for x in os.getloadavg()]


def run_phase(phase: str, args: argparse.Namespace, work: Path) -> JsonDict:
    """Run one phase in a child process; return its own JSON plus wall, CPU and peak RSS."""
    result_file = work / f"phase-{phase}.json"
    command = [
        sys.executable, "-m", "bench.phases", phase, "--work", str(work),
        "--preset", args.preset, "--seed", str(args.seed),
        "--encode-sample", str(args.encode_sample), "--als-iterations", str(args.als_iterations),
        "--result", str(result_file),
    ]  # fmt: skip
    print(f"[{phase}] ...", file=sys.stderr, flush=True)
    before = load_average()
    start = time.perf_counter()
    child = subprocess.Popen(command, env={**os.environ, **thread_env(args.threads)})
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench.scale_train: phase {phase} failed (status {status})")
    record: JsonDict = json.loads(result_file.read_text(encoding="utf-8"))
    record["process"] = {
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "load_average_before": before,
        "load_average_after": load_average(),
    }
    print(f"[{phase}] {json.dumps(record['process'])}", file=sys.stderr, flush=True)
    return record


def estimate_cold(warm: JsonDict, encode: JsonDict) -> JsonDict:
    """Cold pipeline time = warm time - warm embed stage + model load + all texts encoded."""
    texts = encode["catalog_texts"]
    encode_seconds = texts / encode["texts_per_second"]
    embed_warm = warm["stages"]["embed"]["seconds"]
    total = warm["total_seconds"] - embed_warm + encode["model_load_seconds"] + encode_seconds
    return {
        "estimated": True,
        "how": "warm total - warm embed stage + model load + catalog texts / measured texts/s",
        "encode_seconds": round(encode_seconds, 1),
        "total_seconds": round(total, 1),
    }


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale_train", description="Benchmark training at 25M ratings."
    )
    parser.add_argument("--preset", default="25m", help="bench.synth preset (default 25m)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--encode-sample", type=int, default=1000, help="texts encoded cold")
    parser.add_argument("--als-iterations", type=int, default=5, help="iterations timed alone")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--cold", action="store_true", help="also run the real cold pipeline")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run every phase and write the figures."""
    arg_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arg_list)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="recsys-gql-scale-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        phases = {p: run_phase(p, args, work) for p in ("generate", "als", "encode", "warm")}
        if args.cold:
            phases["cold"] = run_phase("cold", args, work)
    payload: JsonDict = {
        "benchmark": f"training pipeline at scale, synthetic preset {args.preset}",
        "timestamp": started.isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench.scale_train", *arg_list]),
        "machine": {**machine_info(), "shared": "yes: other agents run at the same time"},
        "threads": {"setting": args.threads, "env": thread_env(args.threads)},
        "phases": phases,
        "cold_pipeline": phases["cold"]
        if "cold" in phases
        else estimate_cold(phases["warm"], phases["encode"]),
    }
    write_json_atomic(args.out, payload)
    print(json.dumps({k: payload[k] for k in ("cold_pipeline", "threads")}, indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
