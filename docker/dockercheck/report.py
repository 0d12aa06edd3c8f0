"""What a check run measured, printed as it goes and written to bench/results/docker_check.json.

Timings are wall-clock seconds on whatever the machine was doing at the time: the record says
so, with the load average before and after, so a reader can judge them.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class Report:
    """Phases with their duration and findings, in the order they ran."""

    def __init__(self, repo: Path, command: str) -> None:
        self.repo = repo
        self.started = time.monotonic()
        self.data: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": git(repo, "rev-parse", "--short", "HEAD"),
            "worktree_clean": git(repo, "status", "--porcelain") == "",
            "command": command,
            "machine": {
                "cores": os.cpu_count(),
                "load_average_before": os.getloadavg(),
                "platform": platform.platform(),
                "shared": "other engineers' work shared the CPU unless run under flock",
            },
            "phases": {},
            "results": {},
        }

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time ``name``; printed when it starts and ends (failures included)."""
        print(f"[{self.elapsed():7.1f}s] {name} ...", flush=True)
        started = time.monotonic()
        outcome = "failed"
        try:
            yield
            outcome = "ok"
        finally:
            seconds = round(time.monotonic() - started, 1)
            self.data["phases"][name] = {"seconds": seconds, "outcome": outcome}
            print(f"[{self.elapsed():7.1f}s] {name}: {outcome} in {seconds:.1f}s", flush=True)

    def result(self, name: str, value: Any) -> None:
        """Record a finding and print it on one line."""
        self.data["results"][name] = value
        print(f"    {name}: {json.dumps(value)[:300]}", flush=True)

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    def write(self, path: Path, outcome: str) -> None:
        """The whole record as JSON (written whatever the outcome)."""
        self.data["outcome"] = outcome
        self.data["total_seconds"] = round(self.elapsed(), 1)
        self.data["machine"]["load_average_after"] = os.getloadavg()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.data, indent=2) + "\n", encoding="utf-8")
        print(f"{outcome} in {self.data['total_seconds']:.0f}s; record in {path}", file=sys.stderr)


def git(repo: Path, *args: str) -> str:
    """A git answer about the repository (empty when git is unavailable)."""
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    return result.stdout.strip()
