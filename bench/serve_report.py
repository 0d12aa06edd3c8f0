"""The figures of ``python -m bench.serve``: an operation's runs combined into its reported
figures, each target of issue 19 as met or missed, and the printed table."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import numpy as np

from bench.common import JsonDict
from bench.serve_load import wrk_version
from bench.serve_workloads import Operation

MEDIAN_FIGURES = ("req_per_s", "p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "mean_ms")
"""Figures reported as their median over the recorded runs of an operation."""
SUMMED_FIGURES = ("requests", "duration_s", "warmup_errors", "acknowledged_writes", "write_users")
"""Counts reported as their sum over the runs."""


def combine_runs(runs: Sequence[JsonDict]) -> JsonDict:
    """One operation's figures from its recorded runs (see ``--repeat``): the median of each
    rate and latency, the largest ``max_ms``, the sums of the counts and of each kind of
    error, the other fields of the median-throughput run, and every run's main figures
    under ``runs``. One run is returned as it is."""
    if len(runs) == 1:
        return runs[0]
    by_rate = sorted(runs, key=lambda run: run["req_per_s"])
    combined: JsonDict = dict(by_rate[(len(runs) - 1) // 2])
    for key in MEDIAN_FIGURES:
        combined[key] = round(float(np.median([run[key] for run in runs])), 3)
    combined["max_ms"] = max(run["max_ms"] for run in runs)
    for key in SUMMED_FIGURES:
        values = [run[key] for run in runs]
        combined[key] = None if None in values else round(sum(values), 3)
    errors: dict[str, int] = {}
    for run in runs:
        for kind, count in run["errors"].items():
            errors[kind] = errors.get(kind, 0) + count
    combined["errors"] = errors
    combined["runs"] = [
        {
            key: run.get(key)
            for key in (
                "req_per_s",
                "p50_ms",
                "p99_ms",
                "p99_9_ms",
                "max_ms",
                "cache",
                "server_cpu_percent",
                "other_cpu_percent",
                "steal_cpu_percent",
            )
        }
        | {"errors": sum(run["errors"].values())}
        for run in runs
    ]
    return combined


def _target(name: str, op: str, value: float, limit: float, met: bool, **extra: object) -> JsonDict:
    return {"name": name, "operation": op, "value": value, "limit": limit, "met": met,
            "required": True, **extra}  # fmt: skip


def evaluate_targets(
    ops: Sequence[Operation],
    results: dict[str, JsonDict],
    writes: JsonDict | None,
    two_workers: dict[str, JsonDict] | None = None,
) -> list[JsonDict]:
    """Each operation's targets (:class:`~bench.serve_workloads.Targets`) with the measured
    value and whether it was met; the write check counts as an error of every writer."""
    out: list[JsonDict] = []
    ceiling = results.get("typename", {}).get("req_per_s")
    for op in ops:
        if op.name not in results:
            continue
        result, goal = results[op.name], op.targets
        if goal.share_of_typename is not None and ceiling:
            share = round(result["req_per_s"] / ceiling, 3)
            out.append(_target(f"{op.name} req/s >= {goal.share_of_typename:.0%} of __typename",
                               op.name, share, goal.share_of_typename,
                               share >= goal.share_of_typename))  # fmt: skip
        if goal.req_per_s is not None:
            rate = result["req_per_s"]
            out.append(_target(f"{op.name} >= {goal.req_per_s:g} req/s", op.name, rate,
                               goal.req_per_s, rate >= goal.req_per_s))  # fmt: skip
        if goal.p99_ms is not None:
            p99 = result["p99_ms"]
            out.append(_target(f"{op.name} p99 <= {goal.p99_ms:g} ms", op.name, p99, goal.p99_ms,
                               p99 <= goal.p99_ms))  # fmt: skip
        if goal.zero_errors:
            failed = result["errors"]["total"]
            if op.writes and writes is not None and not writes["ok"]:
                failed += 1
            out.append(_target(f"{op.name}: zero errors" + (", every acknowledged write stored"
                               if op.writes else ""), op.name, failed, 0, failed == 0))  # fmt: skip
        if goal.two_worker_speedup is not None and two_workers and op.name in two_workers:
            ratio = round(two_workers[op.name]["req_per_s"] / max(result["req_per_s"], 1e-9), 3)
            out.append(_target(f"{op.name}: two workers >= {goal.two_worker_speedup:g}x one",
                               op.name, ratio, goal.two_worker_speedup,
                               ratio >= goal.two_worker_speedup))  # fmt: skip
    return out


def print_table(title: str, results: dict[str, JsonDict], targets: Sequence[JsonDict],
                tool: str) -> None:  # fmt: skip
    """The per-operation figures and the targets, as text."""
    print(f"\n{title} (load tool: {tool})")
    header = (f"{'operation':<24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'p99.9':>9}"
              f"{'errors':>7}{'hits':>7}{'cpu%':>6}{'other%':>7}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        cache = r.get("cache") or {}
        hits = cache.get("hit_ratio")
        cpu, other = r.get("server_cpu_percent"), r.get("other_cpu_percent")
        print(f"{name:<24}{r['req_per_s']:>9.1f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
              f"{r['p99_9_ms']:>9.1f}{r['errors']['total']:>7}"
              f"{'-' if hits is None else f'{hits:.2f}':>7}"
              f"{'-' if cpu is None else f'{cpu:.0f}':>6}"
              f"{'-' if other is None else f'{other:.0f}':>7}")  # fmt: skip
    print()
    for target in targets:
        print(f"{'met' if target['met'] else 'MISSED':<8} {target['name']}: {target['value']}")


def tool_info(tool: str, wrk: str | None, threads: int) -> JsonDict:
    """Which load generator ran, and how."""
    if tool == "wrk" and wrk is not None:
        return {
            "name": "wrk",
            "version": wrk_version(wrk),
            "threads": threads,
            "script": "generated Lua: per-request bodies (writes: per-lane user and bearer "
            "token), every response body checked",
        }
    return {
        "name": "httpx",
        "version": httpx.__version__,
        "note": "asyncio + httpx in a separate process (wrk not used); one Python process "
        "is a much lower ceiling than wrk, so the figures may be client-bound",
    }
