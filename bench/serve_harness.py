"""The server side of ``python -m bench.serve``: its inputs, a temporary database (SQLite file
or PostgreSQL database), the ``recsys-gql serve`` process (started on a free loopback port,
waited for until every worker has started, always stopped), its CPU and cache counters, and
the read-back of acknowledged writes. ``tests/processes.py`` starts its servers with the same
command and ports."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import JsonDict
from recsys_gql.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS_ENV = "RECSYS_GQL_ARTIFACTS_DIR"
DATA_ENV = "RECSYS_GQL_DATA_DIR"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 180.0
STARTUP_LINE = "Application startup complete."
"""What uvicorn logs once per worker when its app has started (engine loaded)."""
MODEL_LOADED_LINE = "search model loaded"
"""What a worker logs once its background load of the search model is done."""
POSTGRES_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379"
STATS_ATTEMPTS = 64
"""New connections tried to reach every worker's ``/stats`` (each lands on some worker)."""


def artifacts_root() -> Path:
    """``$RECSYS_GQL_ARTIFACTS_DIR`` when set, else ``artifacts`` in the repository."""
    root = os.environ.get(ARTIFACTS_ENV)
    return Path(root).resolve() if root else REPO_ROOT / "artifacts"


def data_folder() -> Path:
    """``$RECSYS_GQL_DATA_DIR/raw/ml-latest-small``, else ``data/raw/ml-latest-small``."""
    root = os.environ.get(DATA_ENV)
    base = Path(root).resolve() if root else REPO_ROOT / "data"
    return base / "raw" / "ml-latest-small"


def missing_inputs(artifacts: Path, data_dir: Path) -> list[str]:
    """What is missing to run the benchmark (empty when everything is there)."""
    problems = []
    if not (artifacts / "current").is_dir():
        problems.append(f"no trained artifacts at {artifacts / 'current'}")
    if not (data_dir / "movies.csv").is_file() or not (data_dir / "ratings.csv").is_file():
        problems.append(f"no MovieLens data at {data_dir}")
    return problems


def catalog_movie_ids(data_dir: Path) -> list[int]:
    """Every ``movieId`` of ``movies.csv``, in file order."""
    with open(data_dir / "movies.csv", encoding="utf-8", newline="") as handle:
        return [int(row["movieId"]) for row in csv.DictReader(handle)]


def init_temporary_database(db_path: Path, data_dir: Path) -> tuple[str, int, float]:
    """Create and load a SQLite database at ``db_path``; (url, ratings loaded, seconds)."""
    from recsys_gql.db.loader import init_database

    url = f"sqlite+aiosqlite:///{db_path}"
    result = asyncio.run(init_database(url, data_dir))
    return url, result.ratings, result.seconds


@contextmanager
def temporary_postgres_database(data_dir: Path) -> Iterator[tuple[str, int, float]]:
    """A fresh PostgreSQL database loaded from ``data_dir``, dropped afterwards."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from recsys_gql.db.loader import init_database

    name = f"recsys_bench_{uuid.uuid4().hex[:10]}"

    async def admin(statement: str) -> None:
        engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        result = asyncio.run(init_database(url, data_dir))
        yield url, result.ratings, result.seconds
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def serve_command(port: int, workers: int | None = None) -> list[str]:
    """``recsys-gql serve`` on ``127.0.0.1:port`` from this interpreter's environment, with
    ``workers`` workers (``None``: as ``RECSYS_GQL_WORKERS`` says)."""
    script = Path(sys.executable).parent / "recsys-gql"
    prefix = [str(script)] if script.exists() else [sys.executable, "-m", "recsys_gql.cli"]
    command = [*prefix, "serve", "--host", HOST, "--port", str(port)]
    return command if workers is None else [*command, "--workers", str(workers)]


@dataclass(frozen=True)
class Server:
    """A running server process (with ``workers`` > 1, uvicorn's supervisor)."""

    url: str
    pid: int
    command: list[str]
    run_id: str
    workers: int


def process_tree_cpu_seconds(root: int) -> dict[int, float]:
    """User + system CPU seconds of ``root`` and each of its live descendants (Linux
    ``/proc``), by pid; empty when ``root`` is gone."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / ticks
    if root not in cpu:
        return {}
    tree = {root}
    grown = True
    while grown:
        grown = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grown = True
    return {pid: cpu[pid] for pid in sorted(tree)}


def machine_cpu_seconds() -> dict[str, float] | None:
    """CPU seconds every core of the machine has spent since boot (``/proc/stat``): ``busy``
    (all but idle and iowait), and within it ``steal`` (time the hypervisor gave this virtual
    machine's cores to others) and ``softirq`` (mostly loopback networking, charged to no
    process); None if unknown."""
    try:
        first = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if first[0] != "cpu":
        return None
    ticks = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    hertz = os.sysconf("SC_CLK_TCK")
    return {
        "busy": (sum(ticks) - ticks[3] - ticks[4]) / hertz,
        "steal": ticks[7] / hertz,
        "softirq": ticks[6] / hertz,
    }


def stop_process(process: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM (graceful shutdown), then SIGKILL after 20 s; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode


@contextmanager
def running_server(env_overrides: dict[str, str], log_path: Path, workers: int) -> Iterator[Server]:
    """Start ``recsys-gql serve`` with ``workers`` workers on a free loopback port, wait for
    ``/readyz`` = 200 and every worker's start-up, and terminate it when the block exits
    (whatever happens inside)."""
    port = free_port()
    command = serve_command(port, workers)
    env = {**os.environ, **env_overrides, "RECSYS_GQL_WORKERS": str(workers)}
    url = f"http://{HOST}:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the benchmark, which stops the server
        )
    try:
        run_id = wait_ready(url, process, log_path, workers)
        yield Server(url=url, pid=process.pid, command=command, run_id=run_id, workers=workers)
    finally:
        code = stop_process(process)
        print(f"server stopped (exit code {code})")


def started_workers(log_path: Path) -> int:
    """How many workers have logged the end of their start-up (and, when the server preloads
    the search model, its load: until then it competes with the load for the CPU)."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 0
    started = text.count(STARTUP_LINE)
    if Settings().preload_search_model:  # the server inherits this environment
        started = min(started, text.count(MODEL_LOADED_LINE))
    return started


def wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path, workers: int) -> str:
    """Poll ``/readyz`` until it answers 200 and every worker has started (one ready worker
    would otherwise take the whole load); the served run id. Raises if the server dies."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    run_id: str | None = None
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with code {process.returncode}:\n{log_tail(log_path)}"
                )
            if run_id is None:
                try:
                    response = client.get(f"{url}/readyz")
                    if response.status_code == 200:
                        run_id = str(response.json().get("run", ""))
                except httpx.TransportError:
                    pass
            if run_id is not None and started_workers(log_path) >= workers:
                return run_id
            time.sleep(0.25)
    raise RuntimeError(
        f"the server was not ready in {READY_TIMEOUT_S:.0f}s "
        f"({started_workers(log_path)} of {workers} workers started):\n{log_tail(log_path)}"
    )


def server_lines(path: Path, limit: int = 40) -> JsonDict:
    """The server log without its access lines (kept apart: how many were written)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {"lines": [], "access_lines": 0}
    other = [line for line in lines if '" 200' not in line and 'HTTP/1.1"' not in line]
    return {"lines": other[-limit:], "access_lines": len(lines) - len(other)}


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of the server log."""
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def code_version() -> JsonDict:
    """The commit the server ran from and whether ``recsys_gql`` differed from it (read-only
    git commands; None when git is unavailable)."""

    def git(*args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
            )
        except OSError:
            return None

    head = git("rev-parse", "HEAD")
    diff = git("diff", "--quiet", "HEAD", "--", "recsys_gql")
    untracked = git("ls-files", "--others", "--exclude-standard", "--", "recsys_gql")
    return {
        "commit": head.stdout.strip() if head is not None and head.returncode == 0 else None,
        "recsys_gql_uncommitted_changes": None
        if diff is None or diff.returncode not in (0, 1) or untracked is None
        else diff.returncode == 1 or bool(untracked.stdout.strip()),
    }


def load_average() -> list[float] | None:
    """The 1/5/15-minute load averages, rounded."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def server_stats(url: str, workers: int) -> JsonDict | None:
    """Every worker's ``/stats`` summed: recommendation memo and search cache hits and misses,
    search batches. Each new connection lands on some worker, so it asks over new connections
    until it has heard from ``workers`` distinct processes (``None`` if it could not)."""
    seen: dict[int, JsonDict] = {}
    for _ in range(STATS_ATTEMPTS):
        try:
            with httpx.Client(timeout=10) as client:  # a new connection each time
                answer = client.get(f"{url}/stats").json()
        except (httpx.HTTPError, ValueError):
            return None
        seen[int(answer["pid"])] = answer
        if len(seen) >= workers:
            break
    if len(seen) < workers:
        return None
    total: JsonDict = {"workers_seen": len(seen)}
    for part in ("recommendation_memo", "search"):
        counts: dict[str, float] = {}
        for answer in seen.values():
            for key, value in answer[part].items():
                if key in COUNTERS:
                    counts[key] = counts.get(key, 0) + value
        total[part] = counts
    return total


COUNTERS = ("hits", "misses", "cache_hits", "cache_misses", "shared", "batches",
            "batched_queries")  # fmt: skip
"""The ``/stats`` fields that add up over workers and over time."""


def stats_delta(before: JsonDict | None, after: JsonDict | None) -> JsonDict | None:
    """What the counters moved by during a run, with the hit ratios and the mean batch."""
    if before is None or after is None:
        return None
    memo = {k: after["recommendation_memo"][k] - before["recommendation_memo"][k]
            for k in ("hits", "misses")}  # fmt: skip
    search = {k: after["search"][k] - before["search"][k] for k in COUNTERS[2:]}
    looked_up = memo["hits"] + memo["misses"]
    memo["hit_ratio"] = round(memo["hits"] / looked_up, 4) if looked_up else None
    asked = search["cache_hits"] + search["cache_misses"]
    search["cache_hit_ratio"] = round(search["cache_hits"] / asked, 4) if asked else None
    batches = search["batches"]
    search["mean_batch"] = round(search["batched_queries"] / batches, 2) if batches else None
    return {"recommendation_memo": memo, "search": search}


def stored_ratings(
    database_url: str, users: Sequence[int]
) -> tuple[int, dict[tuple[int, int], float]]:
    """The ratings table's row count, and every rating of ``users`` (SQLite file or
    PostgreSQL, read after the server has stopped)."""
    wanted = sorted(set(users))
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            total = connection.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
            rows = connection.execute(
                "SELECT user_id, movie_id, rating FROM ratings "
                "WHERE user_id IN (SELECT value FROM json_each(?))",
                (json.dumps(wanted),),
            ).fetchall()
        finally:
            connection.close()
    else:
        total, rows = asyncio.run(_postgres_ratings(database_url, wanted))
    return int(total), {(int(u), int(m)): float(r) for u, m, r in rows}


async def _postgres_ratings(url: str, users: list[int]) -> tuple[int, list[tuple[int, int, float]]]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            total = (await connection.execute(text("SELECT COUNT(*) FROM ratings"))).scalar_one()
            result = await connection.execute(
                text("SELECT user_id, movie_id, rating FROM ratings WHERE user_id = ANY(:u)"),
                {"u": users},
            )
            return int(total), [(int(u), int(m), float(r)) for u, m, r in result.all()]
    finally:
        await engine.dispose()


def check_writes(
    database_url: str,
    loaded_ratings: int,
    acked: Sequence[tuple[int, int, float]],
    bench_users: Sequence[int],
) -> JsonDict:
    """Read the database back: every acknowledged write must be there with its rating, and
    the table must hold the loaded ratings plus rows of the benchmark's signed-up users only."""
    total, stored = stored_ratings(database_url, bench_users)
    acked_ratings: dict[tuple[int, int], set[float]] = {}
    for u, m, r in acked:
        acked_ratings.setdefault((u, m), set()).add(r)
    inconsistent = [pair for pair, ratings in acked_ratings.items() if len(ratings) > 1]
    missing = [a for a in acked if (a[0], a[1]) not in stored]
    mismatched = [a for a in acked if (a[0], a[1]) in stored and stored[(a[0], a[1])] != a[2]]
    foreign = [a for a in acked if a[0] not in set(bench_users)]
    return {
        "bench_users_signed_up": len(set(bench_users)),
        "acknowledged": len(acked),
        "distinct_acknowledged": len(acked_ratings),
        "repeated_pairs": len(acked) - len(acked_ratings),
        "pairs_acknowledged_with_two_ratings": len(inconsistent),
        "acknowledged_for_other_users": len(foreign),
        "benchmark_rows_in_db": len(stored),
        "unacknowledged_rows_in_db": len(set(stored) - set(acked_ratings)),
        "missing": len(missing),
        "rating_mismatches": len(mismatched),
        "missing_examples": missing[:5],
        "ratings_loaded": loaded_ratings,
        "ratings_in_db": int(total),
        "other_rows_changed": int(total) - loaded_ratings - len(stored),
        "ok": not missing
        and not mismatched
        and not inconsistent
        and not foreign
        and int(total) == loaded_ratings + len(stored),
    }
