"""Helpers shared by the benchmarks (standard library only, so importing this module cannot
change the thread pools a benchmark is about to measure)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

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
    """Write ``payload`` to ``path`` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
