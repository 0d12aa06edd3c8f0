"""Helpers shared by the benchmarks. Nothing here imports the training pipeline or torch, so
importing it cannot change the thread pools a benchmark is about to measure."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recsys_gql.artifacts import atomic_write_text

JsonDict = dict[str, Any]


def total_memory_gb() -> float | None:
    """Total physical memory in GB (10**9 bytes) from ``/proc/meminfo``; None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) * 1024 / 1e9, 2)
    except (OSError, ValueError, IndexError):
        pass
    return None


def write_json_atomic(path: Path, payload: JsonDict) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def machine_info() -> JsonDict:
    """Cores, memory and platform: the part of the machine description every benchmark shares."""
    return {
        "cpu_count": os.cpu_count(),
        "memory_gb": total_memory_gb(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def latency_summary(seconds: Sequence[float], digits: int = 3) -> JsonDict:
    """Call count and p50/p90/p99/mean/max of call durations, in milliseconds rounded to
    ``digits`` decimals."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "calls": int(ms.size),
        "p50_ms": round(float(p50), digits),
        "p90_ms": round(float(p90), digits),
        "p99_ms": round(float(p99), digits),
        "mean_ms": round(float(ms.mean()), digits),
        "max_ms": round(float(ms.max()), digits),
    }
