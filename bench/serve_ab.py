"""Paired load runs of one checkout under two (or more) settings, alternating, one server each.

A setting that changes how the server spends its CPU (engine threads, the inline budget, the
event loop) is judged on this shared machine only against runs made beside it, in turn::

    python -m bench.serve_ab --variant RECSYS_GQL_INLINE_ENGINE_MS=1.0 \\
        --variant RECSYS_GQL_INLINE_ENGINE_MS=10 --pairs 3 \\
        --only typename recommendationsUncached mixed --out bench/results/serve_inline_engine.json

Each round runs every variant once (``python -m bench.serve --repeat 1 --no-two-workers``,
with the variant's environment variables set and ``--only``/``--duration`` passed on), so a
burst of load from elsewhere hits one round rather than one variant. The JSON keeps every run's
figures, the machine's load and steal beside them, and the median of each variant; the table
prints the same.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.common import JsonDict, machine_info, write_json_atomic
from bench.serve_harness import code_version

FIGURES = (
    "req_per_s", "p50_ms", "p99_ms", "p99_9_ms", "server_cpu_percent", "other_cpu_percent",
    "steal_cpu_percent",
)  # fmt: skip


def parse_variant(text: str) -> dict[str, str]:
    """``NAME=value[,NAME=value…]`` as environment variables (``-`` alone: no change)."""
    if text == "-":
        return {}
    pairs = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("RECSYS_GQL_"):
            raise argparse.ArgumentTypeError(f"expected RECSYS_GQL_NAME=value, got {item!r}")
        pairs[name] = value
    return pairs


def run_once(variant: dict[str, str], only: Sequence[str], duration: int) -> JsonDict:
    """One ``bench.serve`` run under ``variant``: its per-operation figures."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "serve.json"
        command = [sys.executable, "-m", "bench.serve", "--repeat", "1", "--no-two-workers"]
        command += ["--duration", str(duration), "--only", *only, "--out", str(out)]
        subprocess.run(command, env=os.environ | variant, check=True, stdout=subprocess.DEVNULL)
        result: JsonDict = json.loads(out.read_text(encoding="utf-8"))
    ceiling = result["operations"].get("typename", {}).get("req_per_s")
    operations = {
        name: {key: op.get(key) for key in FIGURES}
        | {
            "errors": op["errors"]["total"],
            "share_of_typename": round(op["req_per_s"] / ceiling, 3) if ceiling else None,
        }
        for name, op in result["operations"].items()
    }
    return {
        "created_at": result["created_at"],
        "load_average_at_start": result["machine"]["load_average_at_start"],
        "variant": variant,
        "operations": operations,
    }


def medians(runs: list[JsonDict], variant: dict[str, str]) -> JsonDict:
    """Each operation's median figures over the runs of ``variant``."""
    mine = [run["operations"] for run in runs if run["variant"] == variant]
    return {
        name: {
            key: round(statistics.median(ops[name][key] for ops in mine), 3)
            for key in ("req_per_s", "share_of_typename", "p50_ms", "p99_ms", "p99_9_ms")
            if all(ops[name][key] is not None for ops in mine)
        }
        for name in mine[0]
    }


def label(variant: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in variant.items()) or "(defaults)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", type=parse_variant, action="append", required=True,
                        help="NAME=value[,NAME=value]; '-' for the defaults")  # fmt: skip
    parser.add_argument("--pairs", type=int, default=3, help="rounds over every variant")
    parser.add_argument("--only", nargs="+", default=["typename", "recommendationsUncached"])
    parser.add_argument("--duration", type=int, default=10, help="seconds per operation")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if len(args.variant) < 2:
        parser.error("give at least two --variant")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    runs = []
    for round_ in range(args.pairs):
        for variant in args.variant:
            run = run_once(variant, args.only, args.duration)
            runs.append(run | {"round": round_ + 1})
            figures = "  ".join(
                f"{name} {op['req_per_s']:.1f} req/s p99 {op['p99_ms']:.0f} ms"
                for name, op in run["operations"].items()
            )
            print(f"round {round_ + 1} {label(variant)}: {figures}", flush=True)
    summary = {label(v): medians(runs, v) for v in args.variant}
    payload: JsonDict = {
        "benchmark": "serve_ab",
        "created_at": started,
        "command": "python -m bench.serve_ab " + " ".join(argv or sys.argv[1:]),
        "machine": machine_info(),
        "code": code_version(),
        "runs": runs,
        "medians": summary,
    }
    write_json_atomic(args.out, payload)
    for name, per_operation in summary.items():
        print(name, per_operation)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
