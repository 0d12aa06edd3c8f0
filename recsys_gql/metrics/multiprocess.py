"""prometheus-client's multiprocess mode for ``recsys-gql serve``.

Each uvicorn worker is its own process with its own counters; a scrape lands on one of them.
In multiprocess mode every process writes its values into memory-mapped files of one
directory, ``PROMETHEUS_MULTIPROC_DIR``, and whichever process answers a scrape reads and
sums all of them. The rules (prometheus-client's documentation) and how they are kept:

- the variable is set before prometheus-client is imported in any process that records:
  :func:`prepare` runs first thing in ``serve``, and the workers are spawned processes that
  inherit the environment;
- the directory is fresh for every server start (values of a previous start would be summed
  in): :func:`prepare` creates a new one and :func:`remove` deletes it when the server stops;
- a worker that exits is marked dead (:func:`mark_dead`), so the live gauges (the served run)
  stop counting it; its counters stay, as a counter must never go down.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

__all__ = ["ENV", "directory", "mark_dead", "prepare", "remove", "scrape_registry"]

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare(parent: Path | None = None) -> Path:
    """Create a fresh directory for this server's metrics (under ``parent``, default the
    system's temporary folder) and point ``PROMETHEUS_MULTIPROC_DIR`` at it (an operator's
    ``PROMETHEUS_MULTIPROC_DIR`` names the parent instead).

    Must run before any metric of :mod:`recsys_gql.metrics.registry` is created in this
    process (``serve`` calls it first; the workers it spawns inherit the variable)."""
    if "recsys_gql.metrics.registry" in sys.modules:
        raise RuntimeError("metrics.multiprocess.prepare() must run before the metrics exist")
    given = os.environ.get(ENV)
    if parent is None and given:
        parent = Path(given)
        parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="recsys-gql-metrics-", dir=parent))
    os.environ[ENV] = str(path)
    # prometheus-client chose in-memory values when it was imported (by this module); metric
    # values created from now on are files of the directory.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path


def directory() -> Path | None:
    """The multiprocess directory of this process (``None``: metrics are in memory)."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


def scrape_registry() -> CollectorRegistry:
    """What a scrape reads: every process's files in multiprocess mode, else this process's
    default registry."""
    path = directory()
    if path is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
    return registry


def mark_dead(pid: int) -> None:
    """Forget the live gauges of a worker process that exited."""
    path = directory()
    if path is not None and path.is_dir():
        mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]


def remove(path: Path) -> None:
    """Delete a server's metrics directory when it stops, and stop pointing at it."""
    shutil.rmtree(path, ignore_errors=True)
    if os.environ.get(ENV) == str(path):
        del os.environ[ENV]
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
