"""Reload under load: 32 connections ask for ``recommendations`` for 30 s while, in the
middle, a new run is published and the server is sent ``SIGHUP``.

    flock /work/.bench.lock python -m bench.reload [--workers 1 2] [--seconds 30]

For each worker count it starts ``recsys-gql serve`` on a temporary SQLite database and a
temporary artifacts root holding run A (the repository's ``artifacts/current`` under a new id,
files hard-linked: :mod:`bench.runs`), loads it, publishes run B (another copy) at half time
and signals the server. It reports the requests answered, every non-2xx answer or transport
error (the target is none), p99 before the signal, during the reload (signal to the last
worker's "reloaded" line) and after, the workers' resident memory before, at the peak and once
the old run has been let go, and the machine's load. Results: ``bench/results/reload.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

from bench.common import JsonDict, latency_summary, machine_info, write_json_atomic
from bench.runs import clone_run
from bench.serve_harness import (
    artifacts_root,
    code_version,
    data_folder,
    init_temporary_database,
    load_average,
    running_server,
)
from recsys_gql.artifacts import publish

RESULTS = Path(__file__).resolve().parent / "results" / "reload.json"
QUERY = "query Recs($u: Int!) { recommendations(userId: $u, first: 10) { movie { id title } } }"
RELOADED_LINE = "reloaded: serving run"
USERS = 610
RETIRE_WAIT_S = 18.0
"""The old run is let go a request timeout (15 s) plus one second after the switch."""


def worker_pids(root: int) -> list[int]:
    """The server process and its descendants (the workers under a supervisor)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def rss_mb(pids: list[int]) -> dict[str, float]:
    """Resident memory in MB of each process that serves (over 100 MB: the workers)."""
    out = {}
    for pid in pids:
        try:
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        mb = pages * os.sysconf("SC_PAGE_SIZE") / 2**20
        if mb > 100:
            out[str(pid)] = round(mb, 1)
    return out


async def _load(
    url: str, seconds: float, connections: int, records: list[tuple[float, float, int]]
) -> None:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    deadline = time.monotonic() + seconds
    rng = random.Random(7)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one_connection() -> None:
            while time.monotonic() < deadline:
                body = {"query": QUERY, "variables": {"u": rng.randint(1, USERS)}}
                started = time.monotonic()
                try:
                    response = await client.post(f"{url}/graphql", json=body)
                    ok = response.status_code == 200 and "errors" not in response.json()
                    status = response.status_code if ok else -response.status_code
                except httpx.HTTPError:
                    status = 0
                records.append((started, time.monotonic() - started, status))

        await asyncio.gather(*(one_connection() for _ in range(connections)))


def reload_in_the_middle(
    server_pid: int, root: Path, source: Path, log: Path, workers: int, at: float, out: JsonDict
) -> None:
    """At ``at`` (monotonic): publish run B, signal the server, note when every worker has
    switched and the workers' peak memory meanwhile."""
    time.sleep(max(0.0, at - time.monotonic()))
    pids = worker_pids(server_pid)
    out["rss_before_mb"] = rss_mb(pids)
    run_b = clone_run(source, root, f"bench-b-{uuid.uuid4().hex[:8]}")
    publish(run_b, root)
    out["run_b"] = run_b.name
    out["signal_at"] = time.monotonic()
    os.kill(server_pid, signal.SIGHUP)
    peak: dict[str, float] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for pid, mb in rss_mb(pids).items():
            peak[pid] = max(peak.get(pid, 0.0), mb)
        if log.read_text(errors="replace").count(RELOADED_LINE) >= workers:
            break
        time.sleep(0.05)
    out["switched_at"] = time.monotonic()
    out["rss_peak_mb"] = peak


def phase(records: list[tuple[float, float, int]], low: float, high: float) -> JsonDict:
    """Requests started in ``[low, high)``: counts and latency."""
    inside = [r for r in records if low <= r[0] < high]
    failed = [r for r in inside if r[2] <= 0]
    summary = latency_summary([r[1] for r in inside]) if inside else {"calls": 0}
    return {**summary, "failed": len(failed)}


def run_one(workers: int, seconds: float, connections: int, tmp: Path) -> JsonDict:
    """One benchmark run with ``workers`` workers."""
    source = (artifacts_root() / "current").resolve()
    root = tmp / f"artifacts-{workers}"
    root.mkdir()
    publish(clone_run(source, root, f"bench-a-{uuid.uuid4().hex[:8]}"), root)
    url_db, _, _ = init_temporary_database(tmp / f"db-{workers}.sqlite", data_folder())
    env = {
        "RECSYS_GQL_ARTIFACTS_DIR": str(root),
        "RECSYS_GQL_DATABASE_URL": url_db,
        "RECSYS_GQL_RATE_LIMIT_READS": "10000000/minute",
        "RECSYS_GQL_GRAPHIQL": "false",
    }
    log = tmp / f"server-{workers}.log"
    records: list[tuple[float, float, int]] = []
    reload: JsonDict = {}
    with running_server(env, log, workers) as server:
        start = time.monotonic()
        load_before = load_average()
        trigger = threading.Thread(
            target=reload_in_the_middle,
            args=(server.pid, root, source, log, workers, start + seconds / 2, reload),
        )
        trigger.start()
        asyncio.run(_load(server.url, seconds, connections, records))
        trigger.join()
        load_after = load_average()
        time.sleep(max(0.0, reload["switched_at"] + RETIRE_WAIT_S - time.monotonic()))
        rss_after = rss_mb(worker_pids(server.pid))
        health = httpx.post(
            f"{server.url}/graphql", json={"query": "{ health { runId } }"}, timeout=10
        ).json()
    signal_at, switched_at = reload["signal_at"], reload["switched_at"]
    failed = [r for r in records if r[2] <= 0]
    return {
        "workers": workers,
        "connections": connections,
        "seconds": seconds,
        "requests": len(records),
        "answered_2xx": sum(1 for r in records if r[2] == 200),
        "non_2xx_or_failed": len(failed),
        "failure_statuses": sorted({r[2] for r in failed}),
        "reload_seconds": round(switched_at - signal_at, 3),
        "before": phase(records, start, signal_at),
        "during": phase(records, signal_at, switched_at),
        "after": phase(records, switched_at, float("inf")),
        "run_a": server.run_id,
        "run_b": reload["run_b"],
        "served_after": health["data"]["health"]["runId"],
        "rss_mb": {
            "before": reload["rss_before_mb"],
            "peak_during_reload": reload["rss_peak_mb"],
            "after_old_run_released": rss_after,
        },
        "load_average": {"before": load_before, "after": load_after},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        for workers in args.workers:
            result = run_one(workers, args.seconds, args.connections, Path(tmp))
            print(
                f"workers={workers}: {result['requests']} requests, "
                f"{result['non_2xx_or_failed']} non-2xx/failed, p99 before/during/after "
                f"{result['before'].get('p99_ms')}/{result['during'].get('p99_ms')}/"
                f"{result['after'].get('p99_ms')} ms, reload {result['reload_seconds']} s, "
                f"RSS {result['rss_mb']}"
            )
            runs.append(result)
    payload: JsonDict = {
        "benchmark": "reload",
        "command": "flock /work/.bench.lock python -m bench.reload "
        + " ".join(["--workers", *map(str, args.workers), "--seconds", str(args.seconds)]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "code": code_version(),
        "machine": machine_info(),
        "runs": runs,
    }
    write_json_atomic(args.out, payload)
    print(f"wrote {args.out}")
    return 0 if all(run["non_2xx_or_failed"] == 0 for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
