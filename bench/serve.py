"""End-to-end load benchmark of the GraphQL server, over loopback, against a real process.

Run from the repository root (``make bench-serve`` runs the first; issue 19's figures come
from both, see BENCHMARKS.md)::

    python -m bench.serve [--duration 10] [--connections 32] [--write-connections 16]
                          [--repeat 3] [--backbone sqlite|postgres|postgres-redis] [--only OP ...]
                          [--no-two-workers] [--out bench/results/serve.json]

1. **A server** (:mod:`bench.serve_harness`): a temporary database loaded from the data folder
   (a SQLite file, or with ``--backbone postgres`` a PostgreSQL database, dropped after;
   ``postgres-redis`` also keeps the rate limits in Redis), and ``recsys-gql serve`` on a free
   loopback port, waited for until every worker has started and loaded its search model. Its
   rate limits are far above anything a run reaches: consulted on every request, never
   refusing one.
2. **The operations** (:mod:`bench.serve_workloads`): ``typename`` (the ceiling, in the same
   run), ``movie``, ``recommendations`` (memo on: the cached figure), ``recommendationsUncached``
   (no request can hit the memo: the figure that counts), ``similarMovies``, ``searchMovies``
   (30,000 distinct texts), ``mixed`` (70/20/8/2) and ``rateMovie`` (``--write-connections``
   writers). Each is verified with plain requests (:mod:`bench.serve_checks`), warmed up,
   then loaded for ``--duration`` seconds at ``--connections`` (:mod:`bench.serve_load`:
   ``wrk`` + Lua, or asyncio + httpx), in rounds over all operations (``--repeat``).
3. **Per run**: req/s, p50/p90/p99/p99.9/max, errors of every kind, the memo's and the search
   cache's hits over the run (from every worker's ``/stats``), the server's CPU, the load
   generator's, and the rest of the machine's (``other_cpu_percent``, with steal and softirq).
4. **Two workers**: ``typename``, ``recommendationsUncached`` and ``mixed`` again against a
   second server with ``--workers 2`` (skipped with ``--no-two-workers``).
5. **Writes**: once the servers have stopped, every acknowledged write is read back from the
   database, and the ratings table must hold exactly the loaded rows plus the benchmark's.
6. **What the machine allows** (:mod:`bench.serve_ceiling`): with the servers stopped, the
   engine's default call is timed alone, and set beside the run's ``__typename`` and CPU
   figures: the most uncached recommendations one core and the whole machine could serve,
   and about the most two workers can gain (``ceilings`` in the JSON).
7. **JSON** (atomically) with the machine and its load, the commit, the command, the figures
   and each target as met or missed (:mod:`bench.serve_report`), then a table.

Everything listens on and targets 127.0.0.1 only; every load is bounded in time.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.common import JsonDict, machine_info, write_json_atomic
from bench.serve_ceiling import ceilings, describe, measure_engine
from bench.serve_checks import sign_up_users, verify_operation
from bench.serve_harness import (
    ARTIFACTS_ENV,
    DATA_ENV,
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    Server,
    artifacts_root,
    catalog_movie_ids,
    check_writes,
    code_version,
    data_folder,
    init_temporary_database,
    load_average,
    machine_cpu_seconds,
    missing_inputs,
    process_tree_cpu_seconds,
    running_server,
    server_lines,
    server_stats,
    stats_delta,
    temporary_postgres_database,
)
from bench.serve_load import REQUEST_TIMEOUT_S, LoadResult, run_httpx, run_wrk
from bench.serve_report import combine_runs, evaluate_targets, print_table, tool_info
from bench.serve_workloads import BenchUser, Operation, operations
from recsys_gql.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "serve.json"
PAUSE_BETWEEN_RUNS_S = 1.0
MAX_LANES = 1024
"""The most connections (and so write lanes, each a signed-up user) a run may use."""
BENCH_RATE_LIMIT = "100000000/minute"
"""The server's read and write limits during the benchmark: consulted, never reached."""
RATE_LIMIT_STORAGE = "memory://"
DEFAULT_WORKERS = 1
TWO_WORKERS = 2
TWO_WORKER_OPERATIONS = ("typename", "recommendationsUncached", "mixed")
"""What the extra two-worker server is measured on."""
BUSY_CPU_PERCENT = 5.0
"""A server process using at least this much CPU during a run counts as taking part in it."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.serve", description="Load-test the GraphQL server on loopback."
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per operation")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument(
        "--write-connections",
        type=int,
        default=16,
        help="concurrent writers of the rateMovie run (default 16)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="unrecorded seconds before each")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="recorded runs per operation, taken in rounds over all the operations; the "
        "figures are each measure's median over the runs, errors their sum (default 1)",
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help="server worker processes of the main run (default 1)",
    )
    parser.add_argument(
        "--no-two-workers",
        dest="two_workers",
        action="store_false",
        help=f"skip the extra {TWO_WORKERS}-worker run of {', '.join(TWO_WORKER_OPERATIONS)}",
    )
    parser.add_argument("--tool", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument("--only", nargs="+", metavar="OP", help="run only these operations")
    parser.add_argument(
        "--backbone",
        choices=("sqlite", "postgres", "postgres-redis"),
        default="sqlite",
        help="sqlite: a temporary SQLite file and in-process limits (default); postgres: "
        f"a temporary database on {POSTGRES_ADMIN_URL.rsplit('/', 1)[0]} instead; "
        f"postgres-redis: that database and rate limits in {REDIS_URL}",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 600:
        parser.error("--duration must be 1-600 seconds")
    if not 1 <= args.connections <= MAX_LANES:
        parser.error(f"--connections must be 1-{MAX_LANES}")
    if not 1 <= args.write_connections <= MAX_LANES:
        parser.error(f"--write-connections must be 1-{MAX_LANES}")
    if not 0 <= args.warmup <= 60:
        parser.error("--warmup must be 0-60 seconds")
    if not 1 <= args.repeat <= 9:
        parser.error("--repeat must be 1-9")
    if not 1 <= args.threads <= args.connections:
        parser.error("--threads must be 1..connections")
    if not 1 <= args.workers <= 64:
        parser.error("--workers must be 1-64")
    return args


def choose_tool(preference: str) -> tuple[str, str | None]:
    """(``"wrk"``, path) when wrk is wanted and installed, else (``"httpx"``, None)."""
    wrk = shutil.which("wrk")
    if preference == "wrk" and wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk), or use --tool httpx")
    if preference in ("auto", "wrk") and wrk is not None:
        return "wrk", wrk
    return "httpx", None


@dataclass
class Suite:
    """One server, its verification and its measured operations."""

    server: JsonDict
    verification: dict[str, JsonDict]
    results: dict[str, JsonDict]


@dataclass
class Runner:
    """What every run of the benchmark shares, and what the runs collect."""

    args: argparse.Namespace
    tool: str
    wrk: str | None
    workdir: Path
    env: dict[str, str]
    limits: dict[str, str]
    acked: list[tuple[int, int, float]] = field(default_factory=list)
    bench_users: list[int] = field(default_factory=list)
    rounds: dict[tuple[str, int], int] = field(default_factory=dict)
    """Recorded runs so far of each (operation, workers)."""

    def suite(self, ops: Sequence[Operation], workers: int) -> Suite:
        """Start a server with ``workers`` workers, verify and measure ``ops``, stop it."""
        log_path = self.workdir / f"server-{workers}w.log"
        verification: dict[str, JsonDict] = {}
        results: dict[str, JsonDict] = {}
        with running_server(self.env, log_path, workers) as server:
            print(
                f"server ready at {server.url} (pid {server.pid}, {workers} worker(s), "
                f"run {server.run_id})"
            )
            for op in ops:
                check = verify_operation(server.url, op.for_warmup(), self.limits)
                self.acked.extend(check.pop("acked"))
                self.bench_users.extend(check["users"])
                verification[op.name] = check
                if not check["ok"]:
                    print(f"{op.name}: verification failed: {check['problems'][0]}")
            runs: dict[str, list[JsonDict]] = {op.name: [] for op in ops}
            # Rounds over all the operations, not each operation's runs back to back: a
            # machine that slows down for a while then weighs on every operation alike.
            for _ in range(self.args.repeat):
                for op in ops:
                    runs[op.name].append(self.measure(server, op))
            results = {name: combine_runs(figures) for name, figures in runs.items()}
        for name, result in results.items():
            result["errors"]["verification_failures"] = len(verification[name]["problems"])
            result["errors"]["total"] = sum(v for k, v in result["errors"].items() if k != "total")
        info: JsonDict = {
            "command": shlex.join(server.command),
            "workers": workers,
            "run_id": server.run_id,
            "log": server_lines(log_path),
        }
        return Suite(server=info, verification=verification, results=results)

    def connections(self, op: Operation) -> int:
        """``--write-connections`` for the ``rateMovie`` run, else ``--connections``."""
        return int(self.args.write_connections if op.mode == "rate" else self.args.connections)

    def sign_up(self, server: Server, op: Operation) -> list[BenchUser]:
        """One new user per write lane (each connection) for a run with writes, else none."""
        if not op.writes:
            return []
        users = sign_up_users(server.url, self.connections(op))
        self.bench_users.extend(u.id for u in users)
        return users

    def load(
        self,
        server: Server,
        op: Operation,
        duration: int,
        users: Sequence[BenchUser],
        phase: str,
    ) -> LoadResult:
        """One bounded load run (``users``: the write lanes' users)."""
        args = self.args
        stem = f"{op.name}-{server.workers}w-{phase}"
        if self.tool == "wrk" and self.wrk is not None:
            return run_wrk(
                self.wrk,
                server.url,
                op,
                duration_s=duration,
                connections=self.connections(op),
                threads=min(args.threads, self.connections(op)),
                users=users,
                stem=stem,
                workdir=self.workdir,
            )
        return run_httpx(
            server.url,
            op,
            duration_s=duration,
            connections=self.connections(op),
            users=users,
            stem=stem,
            workdir=self.workdir,
        )

    def measure(self, server: Server, op: Operation) -> JsonDict:
        """Warm up, then one recorded run of ``op``; its figures as JSON. Acknowledged writes
        (of both runs) are added to ``acked``."""
        args = self.args
        warmup_errors = 0
        if args.warmup > 0:
            warm = self.load(
                server, op.for_warmup(), args.warmup, self.sign_up(server, op), "warmup"
            )
            self.acked.extend(warm.acked)
            warmup_errors = warm.error_total
            time.sleep(PAUSE_BETWEEN_RUNS_S)
        users = self.sign_up(server, op)  # before the clocks start
        index = self.rounds.get((op.name, server.workers), 0)
        self.rounds[(op.name, server.workers)] = index + 1
        op = op.for_round(index, args.repeat)
        stats_before = server_stats(server.url, server.workers) if op.cache else None
        load_before = load_average()
        cpu_before = process_tree_cpu_seconds(server.pid)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        machine_before = machine_cpu_seconds()
        result = self.load(server, op, args.duration, users, "run")
        machine_after = machine_cpu_seconds()
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_after = process_tree_cpu_seconds(server.pid)
        load_after = load_average()
        self.acked.extend(result.acked)
        cache: JsonDict | None = None
        moved = (
            stats_delta(stats_before, server_stats(server.url, server.workers))
            if op.cache
            else None
        )
        if moved is not None:  # the counters of the cache this workload could hit
            cache = dict(moved["recommendation_memo" if op.cache == "memo" else "search"])
            cache["of"] = op.cache
            if op.cache == "search":
                cache["hit_ratio"] = cache["cache_hit_ratio"]
            if op.mode == "mixed":
                cache["search"] = moved["search"]
        time.sleep(PAUSE_BETWEEN_RUNS_S)
        by_process = {
            pid: round(100 * (seconds - cpu_before.get(pid, 0.0)) / result.duration_s, 1)
            for pid, seconds in cpu_after.items()
        }
        server_cpu = round(sum(by_process.values()), 1) if cpu_before and cpu_after else None
        client_cpu = (children_after.ru_utime + children_after.ru_stime) - (
            children_before.ru_utime + children_before.ru_stime
        )
        client_cpu_percent = round(100 * client_cpu / result.duration_s, 1)
        machine = (
            None
            if machine_before is None or machine_after is None
            else {
                key: round(100 * (machine_after[key] - machine_before[key]) / result.duration_s, 1)
                for key in machine_before
            }
        )
        machine_busy = None if machine is None else machine["busy"]
        # What the rest of the machine used meanwhile (other users' tests, ...): a sizeable
        # figure means the server and the load generator competed for the cores.
        other_cpu = (
            None
            if machine_busy is None or server_cpu is None
            else round(max(0.0, machine_busy - server_cpu - client_cpu_percent), 1)
        )
        figures: JsonDict = {
            "requests": result.requests,
            "duration_s": round(result.duration_s, 3),
            "req_per_s": round(result.req_per_s, 1),
            "p50_ms": round(result.latency_ms["p50"], 3),
            "p90_ms": round(result.latency_ms["p90"], 3),
            "p99_ms": round(result.latency_ms["p99"], 3),
            "p99_9_ms": round(result.latency_ms["p99_9"], 3),
            "max_ms": round(result.latency_ms["max"], 3),
            "mean_ms": round(result.latency_ms["mean"], 3),
            "errors": dict(result.errors),
            "warmup_errors": warmup_errors,
            "acknowledged_writes": len(result.acked) if op.writes else None,
            "write_users": len(users) if op.writes else None,
            "connections": self.connections(op),
            "cache": cache,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "server_cpu_percent": server_cpu,
            "client_cpu_percent": client_cpu_percent,
            "machine_cpu_busy_percent": machine_busy,
            "other_cpu_percent": other_cpu,
            "steal_cpu_percent": None if machine is None else machine["steal"],
            "softirq_cpu_percent": None if machine is None else machine["softirq"],
            "distinct_bodies": len(op.bodies) if op.bodies else None,
        }
        if len(by_process) > 1:
            # uvicorn's supervisor (and multiprocessing's helper) and its workers. Every worker
            # accepts on the one listening socket, so wrk's keep-alive connections, opened at
            # once, may all land on one worker: "busy_processes" says how many did the work.
            figures["server_cpu_percent_by_process"] = {str(k): v for k, v in by_process.items()}
            figures["busy_processes"] = sum(1 for v in by_process.values() if v >= BUSY_CPU_PERCENT)
        print(
            f"{op.name} ({server.workers}w): {figures['req_per_s']} req/s, "
            f"p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, "
            f"p99.9 {figures['p99_9_ms']} ms, hits {(cache or {}).get('hit_ratio')}, "
            f"errors {result.error_total}, server cpu {server_cpu}%, other cpu {other_cpu}% "
            f"(steal {figures['steal_cpu_percent']}%)"
            + (f" {sorted(by_process.values(), reverse=True)}" if len(by_process) > 1 else "")
        )
        return figures


def settings_environment() -> dict[str, str | None]:
    """The data and artifact folders, and every ``RECSYS_GQL_*`` setting of this environment
    (which the servers inherit), secrets shown only as set."""
    out: dict[str, str | None] = {k: os.environ.get(k) for k in (ARTIFACTS_ENV, DATA_ENV)}
    for key, value in sorted(os.environ.items()):
        if key.startswith("RECSYS_GQL_") and key not in out:
            hidden = any(word in key for word in ("SECRET", "PASSWORD", "TOKEN", "URL"))
            out[key] = "(set)" if hidden else value
    return out


def machine_bounds(
    ops: Sequence[Operation], results: dict[str, JsonDict], artifacts: Path, connections: int
) -> JsonDict | None:
    """The engine timed alone after the load, and the bounds it sets the engine-bound targets
    (:mod:`bench.serve_ceiling`); None when the run had neither of those operations, and
    only the error when the engine could not be timed."""
    goals = {op.name: op.targets for op in ops if op.name in results}
    uncached, mixed = goals.get("recommendationsUncached"), goals.get("mixed")
    if uncached is None and mixed is None:
        return None
    try:
        engine = measure_engine(artifacts / "current")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:  # the load's figures still count
        print(f"bench.serve: the engine could not be timed alone: {exc}", file=sys.stderr)
        return {"error": str(exc)}
    return ceilings(
        results,
        engine,
        os.cpu_count() or 1,
        share_of_typename=uncached.share_of_typename if uncached else None,
        two_worker_speedup=mixed.two_worker_speedup if mixed else None,
        connections=connections,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write the results; 0 when it ran (targets may still be missed)."""
    args = parse_args(argv)

    artifacts = artifacts_root()
    data_dir = data_folder()
    problems = missing_inputs(artifacts, data_dir)
    if problems:
        for problem in problems:
            print(f"bench.serve: {problem}", file=sys.stderr)
        print(
            "create them with `make serve`, or:\n"
            "    recsys-gql data fetch --source ../shared/data && recsys-gql train\n"
            f"(or point {ARTIFACTS_ENV} / {DATA_ENV} at existing ones)",
            file=sys.stderr,
        )
        return 2

    tool, wrk = choose_tool(args.tool)
    load_at_start = load_average()
    started_at = datetime.now(UTC)
    ops = operations(catalog_movie_ids(data_dir), data_dir)
    if args.only:
        unknown = set(args.only) - {op.name for op in ops}
        if unknown:
            print(f"bench.serve: unknown operations {sorted(unknown)}", file=sys.stderr)
            return 2
        ops = [op for op in ops if op.name in args.only]
    extra_ops = (
        [op for op in ops if op.name in TWO_WORKER_OPERATIONS]
        if args.two_workers and args.workers != TWO_WORKERS
        else []
    )
    code = code_version()
    print(f"load average at start: {load_at_start}; tool: {tool}; code: {code}")

    on_postgres = args.backbone.startswith("postgres")
    on_redis = args.backbone == "postgres-redis"
    limits = {
        "reads": BENCH_RATE_LIMIT,
        "writes": BENCH_RATE_LIMIT,
        "storage": REDIS_URL if on_redis else RATE_LIMIT_STORAGE,
    }
    main_suite: Suite | None = None
    extra_suite: Suite | None = None
    with (
        ExitStack() as stack,
        tempfile.TemporaryDirectory(prefix="recsys-bench-serve-") as tmp,
    ):
        workdir = Path(tmp)
        db_path = workdir / "bench.db"
        if on_postgres:
            url, loaded_ratings, load_seconds = stack.enter_context(
                temporary_postgres_database(data_dir)
            )
        else:
            url, loaded_ratings, load_seconds = init_temporary_database(db_path, data_dir)
        print(f"temporary database loaded ({loaded_ratings:,} ratings, {load_seconds:.1f}s)")
        env = {
            "RECSYS_GQL_RATE_LIMIT_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
            "RECSYS_GQL_DATABASE_URL": url,
            "RECSYS_GQL_ARTIFACTS_DIR": str(artifacts),
            "RECSYS_GQL_DATA_DIR": str(data_dir.parents[1]),
            "RECSYS_GQL_RATE_LIMIT_READS": limits["reads"],
            "RECSYS_GQL_RATE_LIMIT_WRITES": limits["writes"],
            "RECSYS_GQL_RATE_LIMIT_STORAGE": limits["storage"],
        }
        runner = Runner(args=args, tool=tool, wrk=wrk, workdir=workdir, env=env, limits=limits)
        try:
            main_suite = runner.suite(ops, args.workers)
            if extra_ops:
                extra_suite = runner.suite(extra_ops, TWO_WORKERS)
        except (RuntimeError, subprocess.TimeoutExpired, httpx.HTTPError) as exc:
            print(f"bench.serve: {exc}", file=sys.stderr)
            return 1
        writes = (
            check_writes(url, loaded_ratings, runner.acked, runner.bench_users)
            if runner.acked or runner.bench_users
            else None
        )

    two = extra_suite.results if extra_suite is not None else None
    targets = evaluate_targets(ops, main_suite.results, writes, two)
    bounds = machine_bounds(ops, main_suite.results, artifacts, args.connections)
    command = shlex.join(["python", "-m", "bench.serve", *(argv or sys.argv[1:])])
    payload: JsonDict = {
        "benchmark": "serve",
        "created_at": started_at.isoformat(timespec="seconds"),
        "command": command,
        "environment": settings_environment(),
        "machine": {**machine_info(), "load_average_at_start": load_at_start},
        "code": code,
        "tool": tool_info(tool, wrk, args.threads),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeat": args.repeat,
            "connections": args.connections,
            "write_connections": args.write_connections,
            "request_timeout_s": REQUEST_TIMEOUT_S,
            "workers": args.workers,
            "event_loop": Settings().event_loop,  # the servers inherit this environment
            "rate_limits": {
                **limits,
                "note": "RECSYS_GQL_RATE_LIMIT_READS/_WRITES/_STORAGE of every benchmark "
                "server: the limiter is consulted on every request but never refuses one "
                + (
                    "(Redis: one count shared by every worker)"
                    if on_redis
                    else "(memory storage: counters per worker process)"
                ),
            },
        },
        "server": {
            **main_suite.server,
            "artifacts": str(artifacts / "current"),
            "database": (
                "PostgreSQL 127.0.0.1:5432, temporary database initialised from the data folder"
                if on_postgres
                else "SQLite, temporary file initialised from the data folder"
            ),
            "backbone": args.backbone,
            "data_dir": str(data_dir),
        },
        "verification": main_suite.verification,
        "operations": main_suite.results,
        "writes": writes,
        "targets": targets,
        "all_required_targets_met": all(t["met"] for t in targets if t["required"]),
        "two_workers": None,
        "ceilings": bounds,
    }
    if extra_suite is not None:
        extra_targets = evaluate_targets(extra_ops, extra_suite.results, None)
        payload["two_workers"] = {
            "server": extra_suite.server,
            "note": "a second server on the same database with --workers 2, measured after "
            "the main run on the same settings",
            "verification": extra_suite.verification,
            "operations": extra_suite.results,
            "targets": extra_targets,
            "all_required_targets_met": all(t["met"] for t in extra_targets if t["required"]),
        }
    write_json_atomic(args.out, payload)
    tool_name = payload["tool"]["name"]
    print_table(f"{args.workers} worker(s)", main_suite.results, targets, tool_name)
    if extra_suite is not None:
        print_table(
            f"{TWO_WORKERS} workers",
            extra_suite.results,
            payload["two_workers"]["targets"],
            tool_name,
        )
    if bounds is not None and "error" not in bounds:
        print("\nwhat this machine allows (bench/serve_ceiling.py):")
        for line in describe(bounds):
            print(f"  {line}")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
