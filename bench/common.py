"""Helpers shared by the benchmarks. Nothing here imports the training pipeline or torch, so
importing it cannot change the thread pools a benchmark is about to measure."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

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
