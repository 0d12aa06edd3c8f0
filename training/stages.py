"""Per-stage timing and peak-memory measurement with a one-line summary per stage."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident set size of this process (Linux ``/proc``; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except OSError:
        return 0


@dataclass(frozen=True)
class StageResult:
    """Wall time, CPU time (all threads) and peak resident memory of one stage."""

    name: str
    seconds: float
    peak_rss_mb: float
    detail: str = ""
    cpu_seconds: float = 0.0
    """Process CPU time over the stage: on a shared machine, steadier than wall time."""


@dataclass
class StageTimer:
    """Runs stages, samples RSS every ``interval`` s while each runs, and reports each one."""

    report: Callable[[str], None] = print
    interval: float = 0.05
    results: list[StageResult] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, str]]:
        """Time the ``with`` block; put a short ``detail`` into the yielded dict."""
        peak = [rss_bytes()]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(self.interval):
                peak[0] = max(peak[0], rss_bytes())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        info: dict[str, str] = {}
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            yield info
        finally:
            seconds = time.perf_counter() - start
            cpu_seconds = time.process_time() - cpu_start
            stop.set()
            sampler.join()
            peak[0] = max(peak[0], rss_bytes())
        result = StageResult(name, seconds, peak[0] / 2**20, info.get("detail", ""), cpu_seconds)
        self.results.append(result)
        extra = f" — {result.detail}" if result.detail else ""
        self.report(f"[{name}] {seconds:.1f}s, peak RSS {result.peak_rss_mb:.0f} MB{extra}")

    def as_dict(self) -> dict[str, float]:
        """Seconds per stage, for the manifest."""
        return {r.name: round(r.seconds, 3) for r in self.results}
