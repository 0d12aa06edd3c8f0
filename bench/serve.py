"""End-to-end load benchmark of the GraphQL server, over loopback, against a real process.

Run from the repository root::

    python -m bench.serve [--duration 10] [--connections 32] [--workers 1] [--no-two-workers]
                          [--repeat 1] [--out bench/results/serve.json]

What it does:

1. **Prepares a server.** It needs trained artifacts (``$RECSYS_GQL_ARTIFACTS_DIR/current``,
   else ``artifacts/current``) and the MovieLens folder they were trained on
   (``$RECSYS_GQL_DATA_DIR/raw/ml-latest-small``, else ``data/raw/ml-latest-small``); without
   them it says how to create them and exits 2. A fresh SQLite database is initialised from the
   data folder in a temporary directory (the user's database is never touched), and
   ``recsys-gql serve --host 127.0.0.1 --port <free port> --workers N`` is started as a separate
   process with ``RECSYS_GQL_DATABASE_URL`` / ``RECSYS_GQL_ARTIFACTS_DIR`` /
   ``RECSYS_GQL_WORKERS`` pointing at them. The benchmark waits for ``/readyz`` to answer 200
   and for every worker to have finished its start-up, and always terminates the server at the
   end.

   **Rate limits.** The server throttles reads per client IP and writes per user (defaults 30
   and 10 a minute). The benchmark runs it with ``RECSYS_GQL_RATE_LIMIT_READS`` and
   ``..._WRITES`` set to :data:`BENCH_RATE_LIMIT` (``memory://`` storage, per worker process):
   far above anything a run can reach, so the limiter is consulted on every request (its cost
   is part of the figures) but never refuses one. The verification pass checks that the answers
   carry ``X-RateLimit-Limit`` with that limit, and any 429 during a run counts as an error.
2. **Verifies each operation** with a few plain requests (HTTP 200, no GraphQL ``errors``, the
   expected payload, the rate-limit header), then drives a **bounded load** — a fixed duration
   and connection count, preceded by a short unrecorded warm-up — from a separate process:
   ``wrk`` (Debian package ``wrk``) with a generated Lua script that varies the request bodies
   and checks every response body, or, when ``wrk`` is not installed, an asyncio + httpx load
   generator started as ``python -m bench.serve --loadgen SPEC`` (the JSON says which ran).
   Operations:

   * ``typename`` — ``{ __typename }``: the ceiling of this server and client;
   * ``movie`` — ``movie(id)`` with a few fields (one catalog and one rating-stats lookup),
     cycling through catalog ids;
   * ``recommendations`` — ``recommendations(userId, first: 10) { score movie { title } }``
     cycling through users 1..610 (a user's request repeats every 610, so after the warm-up
     the server's memo of results answers most of them: see ``recsys_gql/recsys/memo.py``);
   * ``recommendationsComputed`` — the same with a new ``alpha`` on every request (30,000
     distinct bodies; the warm-up and verification use others), so every answer is computed;
   * ``similarMovies`` — ``similarMovies(movieId, first: 10) { similarity movie { title } }``;
   * ``searchMovies`` — ``searchMovies(query, first: 10) { score movie { title } }`` over a
     handful of queries (each request encodes its query with the sentence model);
   * ``rateMovie`` — authenticated mutations. ``rateMovie`` needs ``Authorization: Bearer
     <token>`` of the user it writes for, so before the verification pass, the warm-up and the
     timed run the benchmark signs up fresh users with ``signUp { token user { id } }`` (not
     timed; ``signUp`` spends the server's write allowance too): one for the verification and
     one per load *lane* — ``--connections`` of them — for each load run. The load generator
     sends each write with its lane's token and for its lane's user (wrk: a thread's requests
     take its lanes in turn; httpx: one lane per connection), each lane rating the catalog's
     movies in turn, so (user, movie) pairs do not repeat until a lane has rated all 9,742
     (the rating is a function of the pair, so a repeat after that rewrites the same value).
     An answer other than ``RatingSaved`` (``Unauthenticated``, ``Forbidden``, ...) is an
     error. Every acknowledged write is recorded; once the server has stopped, the SQLite file
     is read back and each acknowledged write must be there with its rating, and the table
     must hold exactly the loaded rows plus rows of the users the benchmark signed up.

   **Repeats.** ``--repeat N`` records N runs of each operation, in rounds over all the
   operations (a machine that slows down for a while then weighs on every operation alike),
   and each run has its own warm-up, so it measures its operation's steady state rather than
   what the operation before it left behind: the ``recommendationsComputed`` run's 30,000
   distinct answers evict the memo entries the next ``recommendations`` run relies on (with
   the warm-up before the first round only, its later rounds recomputed 610 answers while
   timed: p99 46 → 66-74 ms, max 53 → 162-180 ms). Each operation reports the median of each rate
   and latency over its runs, the worst ``max``, and the sum of every count and error, with
   every run's figures under ``runs``. On a shared virtual machine whose speed drifts (the
   same code measured 461-832 ``recommendations``/s in consecutive runs) one run is an
   anecdote.

   Errors counted per operation: non-2xx answers (429 counted apart as ``rate_limited``),
   bodies with GraphQL ``errors``, bodies without the expected payload, socket errors,
   timeouts, and failed verification requests.
3. **Repeats with two workers.** By default ``typename`` and both ``recommendations`` runs
   are then measured again against a second server started with ``--workers 2`` (same
   database and settings); ``--no-two-workers`` skips this, and it is skipped when
   ``--workers 2`` already is the main run. Reported apart, under ``two_workers``.
4. **Writes JSON** (atomically) with the machine, the load average at the start and before each
   operation, the commit served, the command, the tool, the rate limits, per-operation req/s,
   p50/p90/p99/max latency, errors, the CPU use during each run — the server's (every process
   of it; per process when there are several), the load generator's, and the rest of the
   machine's (``other_cpu_percent``: when it is large, other jobs competed for the cores and
   the figures understate the server; it includes ``steal_cpu_percent``, the time the
   hypervisor gave this virtual machine's cores to others, and ``softirq_cpu_percent``,
   mostly loopback networking) — the write check, and each target as met or missed; then
   prints a table.

Targets (from the brief): ``recommendations`` req/s ≥ 50 % of ``typename`` req/s (reported for
both ``recommendations`` and ``recommendationsComputed``); p99 ≤ 50 ms at
32 connections for each operation (``searchMovies`` is reported but not required); ``rateMovie``
≥ 300 writes/s on SQLite with zero errors. Everything listens on and targets 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from limits import parse as parse_limit

from bench.common import JsonDict, machine_info, write_json_atomic
from recsys_gql.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "serve.json"
ARTIFACTS_ENV = "RECSYS_GQL_ARTIFACTS_DIR"
DATA_ENV = "RECSYS_GQL_DATA_DIR"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 10
PAUSE_BETWEEN_RUNS_S = 1.0
VERIFY_REQUESTS = 5

TARGET_CONNECTIONS = 32
TARGET_P99_MS = 50.0
TARGET_RECS_SHARE = 0.5
TARGET_WRITES_PER_S = 300.0

KNOWN_USERS = range(1, 611)
"""The users of ml-latest-small."""
READ_MOVIES = 1000
"""How many catalog ids the ``movie`` and ``similarMovies`` runs cycle through."""
MAX_LANES = 1024
"""The most connections (and so write lanes, each a signed-up user) a run may use."""

BENCH_RATE_LIMIT = "100000000/minute"
"""The server's read and write limits during the benchmark: consulted, never reached."""
RATE_LIMIT_STORAGE = "memory://"
DEFAULT_WORKERS = 1
TWO_WORKERS = 2
TWO_WORKER_OPERATIONS = ("typename", "recommendations", "recommendationsComputed")
"""What the extra two-worker server is measured on."""
BUSY_CPU_PERCENT = 5.0
"""A server process using at least this much CPU during a run counts as taking part in it."""
STARTUP_LINE = "Application startup complete."
"""What uvicorn logs once per worker when its app has started (engine loaded)."""
MODEL_LOADED_LINE = "search model loaded"
"""What a worker logs once its background load of the search model is done."""
RATINGS = tuple(0.5 * i for i in range(1, 11))

SEARCH_QUERIES: tuple[str, ...] = (
    "a heist in space with a sarcastic robot",
    "feel-good animated movie about toys that come alive",
    "slow-burning psychological horror in an isolated house",
    "romantic comedy set in New York at Christmas",
    "epic fantasy quest to destroy a magical ring",
    "time travel paradox thriller",
    "war movie about soldiers landing on a beach in 1944",
    "spy thriller with car chases across Europe",
)

MOVIE_QUERY = (
    "query Movie($id: Int!) { movie(id: $id) { id title year genres ratingsCount averageRating } }"
)
RECS_QUERY = (
    "query Recs($userId: Int!) { recommendations(userId: $userId, first: 10) "
    "{ score movie { title } } }"
)
RECS_ALPHA_QUERY = (
    "query Recs($userId: Int!, $alpha: Float) { recommendations(userId: $userId, first: 10, "
    "alpha: $alpha) { score movie { title } } }"
)
COMPUTED_BODIES = 30_000
"""Distinct (user, α) bodies of the ``recommendationsComputed`` run: no request repeats one
(and so none can be answered from the server's memo) for ~40 s at 700 req/s."""
SIMILAR_QUERY = (
    "query Similar($movieId: Int!) { similarMovies(movieId: $movieId, first: 10) "
    "{ similarity movie { title } } }"
)
SEARCH_QUERY = (
    "query Search($query: String!) { searchMovies(query: $query, first: 10) "
    "{ score movie { title } } }"
)
RATE_QUERY = (
    "mutation Rate($u: Int!, $m: Int!, $r: Float!) "
    "{ rateMovie(input: {userId: $u, movieId: $m, rating: $r}) { __typename "
    "... on RatingSaved { message user { id } } "
    "... on InvalidRating { message } ... on MovieNotFound { message } "
    "... on Unauthenticated { message } ... on Forbidden { message } } }"
)
SIGN_UP_QUERY = "mutation { signUp { token user { id } } }"
_SAVED = re.compile(r"saved (?P<rating>[0-9.]+) for movie (?P<movie>\d+)")

LUA_TEMPLATE = r"""-- generated by bench/serve.py for one run of one operation
local mode = "@MODE@"
local marker = [==[@MARKER@]==]
local bodies = {
@BODIES@
}
-- writes: lane i (0-based) writes for lane_users[i + 1] with lane_tokens[i + 1]; thread t
-- owns lanes t, t + nthreads, ... and takes them in turn
local lane_users = { @LANE_USERS@ }
local lane_tokens = {
@LANE_TOKENS@
}
local nthreads = @THREADS@
local rate_movies = { @RATE_MOVIES@ }
local rate_ratings = { @RATE_RATINGS@ }
local rate_template = [==[@RATE_TEMPLATE@]==]
local result_path = [==[@RESULT_PATH@]==]
local acked_path = [==[@ACKED_PATH@]==]
local headers = { ["Content-Type"] = "application/json" }
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  non2xx = 0
  limited = 0
  gql_errors = 0
  unexpected = 0
  acked = {}
  prepared = {}
  for i, body in ipairs(bodies) do
    prepared[i] = wrk.format("POST", "/graphql", headers, body)
  end
  offset = (tid * 7919) % math.max(#prepared, 1)
  my_lanes = {}
  lane_headers = {}
  if mode == "rate" then
    for lane = tid, #lane_users - 1, nthreads do
      my_lanes[#my_lanes + 1] = lane
      lane_headers[#lane_headers + 1] = {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer " .. lane_tokens[lane + 1],
      }
    end
  end
end

function request()
  local k = counter
  counter = counter + 1
  if mode == "rate" then
    local n = #my_lanes
    local i = k % n
    local lane = my_lanes[i + 1]
    local j = math.floor(k / n) % #rate_movies
    local movie = rate_movies[j + 1]
    local rating = rate_ratings[((j + lane) % #rate_ratings) + 1]
    local body = string.format(rate_template, lane_users[lane + 1], movie, rating)
    return wrk.format("POST", "/graphql", lane_headers[i + 1], body)
  end
  return prepared[((k + offset) % #prepared) + 1]
end

function response(status, headers, body)
  if status == 429 then
    limited = limited + 1
    return
  end
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    return
  end
  if string.find(body, '"errors"', 1, true) then
    gql_errors = gql_errors + 1
    return
  end
  if not string.find(body, marker, 1, true) then
    unexpected = unexpected + 1
    return
  end
  if mode == "rate" then
    local rating, movie = string.match(body, "saved ([%d%.]+) for movie (%d+)")
    local user = string.match(body, '"user":%s*{%s*"id":%s*(%d+)')
    if rating and movie and user then
      acked[#acked + 1] = user .. "," .. movie .. "," .. rating
    else
      unexpected = unexpected + 1
    end
  end
end

function done(summary, latency, requests)
  local n2, rl, ge, un = 0, 0, 0, 0
  local out = io.open(acked_path, "w")
  for _, thread in ipairs(threads) do
    n2 = n2 + thread:get("non2xx")
    rl = rl + thread:get("limited")
    ge = ge + thread:get("gql_errors")
    un = un + thread:get("unexpected")
    local list = thread:get("acked")
    for _, line in ipairs(list) do
      out:write(line, "\n")
    end
  end
  out:close()
  local e = summary.errors
  local f = io.open(result_path, "w")
  f:write(string.format(
    '{"duration_us": %d, "requests": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"non_2xx": %d, "rate_limited": %d, "graphql_errors": %d, "unexpected_body": %d, ' ..
    '"latency_us": {"min": %d, "max": %d, "mean": %.1f, "stdev": %.1f, ' ..
    '"p50": %d, "p90": %d, "p99": %d, "p999": %d}}',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    n2, rl, ge, un,
    latency.min, latency.max, latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
  f:close()
end
"""


@dataclass(frozen=True)
class Operation:
    """One benchmarked GraphQL operation.

    ``bodies`` are the JSON request bodies a read run cycles through; a write run (``rate``)
    builds a fresh body per request from ``rate_movies`` and its lane's user instead.
    ``marker`` must appear in every successful response body.
    """

    name: str
    marker: str
    bodies: tuple[str, ...] = ()
    rate_movies: tuple[int, ...] = ()
    p99_required: bool = True
    warmup_bodies: tuple[str, ...] = ()
    """Bodies of the verification and warm-up instead of ``bodies`` (none: the same), so
    that the recorded run repeats none of them."""

    def for_warmup(self) -> Operation:
        """This operation as the verification and the warm-up send it."""
        return replace(self, bodies=self.warmup_bodies) if self.warmup_bodies else self

    @property
    def is_write(self) -> bool:
        """Whether this is the ``rateMovie`` write run."""
        return bool(self.rate_movies)


@dataclass(frozen=True)
class BenchUser:
    """A user the benchmark signed up, with its bearer token (kept out of the JSON)."""

    id: int
    token: str


@dataclass
class LoadResult:
    """What one bounded run measured (the same shape whichever tool produced it)."""

    requests: int
    duration_s: float
    latency_ms: dict[str, float]
    errors: dict[str, int]
    acked: list[tuple[int, int, float]] = field(default_factory=list)

    @property
    def error_total(self) -> int:
        """Every failed request: non-2xx, GraphQL errors, bad bodies, socket errors, timeouts."""
        return sum(self.errors.values())

    @property
    def req_per_s(self) -> float:
        """Completed requests per second."""
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0


# --------------------------------------------------------------------------------------------
# Inputs: artifacts, data, database, request bodies


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


def spread(items: Sequence[int], count: int) -> list[int]:
    """``count`` items taken evenly across ``items`` (all of them when there are fewer)."""
    if len(items) <= count:
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def body(query: str, variables: dict[str, Any]) -> str:
    """A compact GraphQL POST body."""
    return json.dumps({"query": query, "variables": variables}, separators=(",", ":"))


def rate_body(user: int, movie: int, rating: float) -> str:
    """The ``rateMovie`` body for one (user, movie, rating)."""
    return body(RATE_QUERY, {"u": user, "m": movie, "r": rating})


def rate_combo(lane: int, j: int, movies: Sequence[int]) -> tuple[int, float]:
    """(movie, rating) of the ``j``-th write of load lane ``lane``: the Lua script's formula.

    Each lane's user rates ``movies`` in turn, so its (user, movie) pairs do not repeat until
    it has rated them all; the rating rotates through 0.5..5.0 with an offset per lane and is
    a function of the pair, so a repeat rewrites the same value.
    """
    j %= len(movies)
    return movies[j], RATINGS[(j + lane) % len(RATINGS)]


def auth_headers(user: BenchUser) -> dict[str, str]:
    """The headers of a write for ``user``."""
    return {"Content-Type": "application/json", "Authorization": f"Bearer {user.token}"}


def computed_recommendations(alpha_from: float) -> Iterator[str]:
    """``recommendations`` bodies cycling through the users, each with a new ``alpha``
    (``alpha_from`` + i·10⁻⁶), so the server computes every answer: its memo of results is
    keyed by the arguments and never hits (``recommendations`` itself repeats each user's
    request every 610, as a front end re-asking for a list does)."""
    for i in range(COMPUTED_BODIES):
        alpha = round(alpha_from + i * 1e-6, 6)
        yield body(RECS_ALPHA_QUERY, {"userId": KNOWN_USERS[i % len(KNOWN_USERS)], "alpha": alpha})


def operations(movie_ids: Sequence[int]) -> list[Operation]:
    """The benchmarked operations, in the order they run (the write last)."""
    read_ids = spread(movie_ids, READ_MOVIES)
    return [
        Operation("typename", '"__typename":"Query"', (body("{ __typename }", {}),)),
        Operation(
            "movie",
            '"movie":{"id":',
            tuple(body(MOVIE_QUERY, {"id": m}) for m in read_ids),
        ),
        Operation(
            "recommendations",
            '"score":',
            tuple(body(RECS_QUERY, {"userId": u}) for u in KNOWN_USERS),
        ),
        Operation(
            "recommendationsComputed",
            '"score":',
            tuple(computed_recommendations(0.5)),
            warmup_bodies=tuple(computed_recommendations(0.2)),
        ),
        Operation(
            "similarMovies",
            '"similarity":',
            tuple(body(SIMILAR_QUERY, {"movieId": m}) for m in read_ids),
        ),
        Operation(
            "searchMovies",
            '"score":',
            tuple(body(SEARCH_QUERY, {"query": q}) for q in SEARCH_QUERIES),
            p99_required=False,
        ),
        Operation("rateMovie", '"__typename":"RatingSaved"', rate_movies=tuple(movie_ids)),
    ]


def init_temporary_database(db_path: Path, data_dir: Path) -> tuple[str, int, float]:
    """Create and load a SQLite database at ``db_path``; (url, ratings loaded, seconds)."""
    from recsys_gql.db.loader import init_database

    url = f"sqlite+aiosqlite:///{db_path}"
    result = asyncio.run(init_database(url, data_dir))
    return url, result.ratings, result.seconds


POSTGRES_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379"


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


# --------------------------------------------------------------------------------------------
# The server process


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def serve_command(port: int, workers: int) -> list[str]:
    """``recsys-gql serve`` from this interpreter's environment."""
    script = Path(sys.executable).parent / "recsys-gql"
    prefix = [str(script)] if script.exists() else [sys.executable, "-m", "recsys_gql.cli"]
    return [*prefix, "serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]


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


# --------------------------------------------------------------------------------------------
# Verification pass


def check_body(op: Operation, status: int, text: str) -> str | None:
    """Why a response is a failure for ``op``, or None when it is a success."""
    if not 200 <= status <= 299:
        return f"HTTP {status}: {text[:200]}"
    if '"errors"' in text:
        return f"GraphQL errors: {text[:300]}"
    if op.marker not in text:
        return f"no {op.marker} in {text[:300]}"
    return None


def rate_limit_amount(limit: str) -> int:
    """How many requests ``limit`` (``"100000000/minute"``) allows per window."""
    amount: int = parse_limit(limit).amount
    return amount


def sign_up_users(url: str, count: int) -> list[BenchUser]:
    """``count`` new users and their tokens, from ``signUp`` (one request each)."""
    users: list[BenchUser] = []
    with httpx.Client(timeout=60) as client:
        for _ in range(count):
            response = client.post(
                f"{url}/graphql",
                content=body(SIGN_UP_QUERY, {}),
                headers={"Content-Type": "application/json"},
            )
            if response.status_code != 200 or '"errors"' in response.text:
                raise RuntimeError(
                    f"signUp failed: HTTP {response.status_code}: {response.text[:300]}"
                )
            signed = response.json()["data"]["signUp"]
            users.append(BenchUser(id=int(signed["user"]["id"]), token=str(signed["token"])))
    return users


def verify_operation(url: str, op: Operation, limits: dict[str, str]) -> JsonDict:
    """Send a few requests of ``op`` one at a time and check each answer in full, including
    that the rate limiter was consulted with the benchmark's limit. A write signs up its own
    user first (listed under ``users``)."""
    users: list[BenchUser] = []
    combos: list[tuple[int, int, float]] = []
    if op.is_write:
        users = sign_up_users(url, 1)
        combos = [(users[0].id, *rate_combo(0, j, op.rate_movies)) for j in range(VERIFY_REQUESTS)]
        bodies = [rate_body(*c) for c in combos]
        headers = auth_headers(users[0])
        expected_limit = rate_limit_amount(limits["writes"])
    else:
        bodies = list(op.bodies[:: max(1, len(op.bodies) // VERIFY_REQUESTS)][:VERIFY_REQUESTS])
        headers = {"Content-Type": "application/json"}
        expected_limit = rate_limit_amount(limits["reads"])
    problems: list[str] = []
    acked: list[tuple[int, int, float]] = []
    with httpx.Client(timeout=60) as client:
        for i, content in enumerate(bodies):
            response = client.post(f"{url}/graphql", content=content, headers=headers)
            problem = check_body(op, response.status_code, response.text)
            limit_header = response.headers.get("x-ratelimit-limit")
            if problem is None and limit_header != str(expected_limit):
                problem = (
                    f"X-RateLimit-Limit is {limit_header!r}, not {expected_limit}: "
                    "the rate limiter was not consulted with the benchmark's limits"
                )
            if problem is None and op.is_write:
                payload = response.json()["data"]["rateMovie"]
                match = _SAVED.search(payload.get("message", ""))
                sent = combos[i]
                if match is None or payload["user"]["id"] != sent[0]:
                    problem = f"unexpected acknowledgement {payload}"
                elif (int(match["movie"]), float(match["rating"])) != (sent[1], sent[2]):
                    problem = f"acknowledged {match[0]!r} for {sent}"
                else:
                    acked.append(sent)
            if problem is not None:
                problems.append(problem)
    return {
        "requests": len(bodies),
        "ok": not problems,
        "problems": problems,
        "acked": acked,
        "users": [u.id for u in users],
    }


# --------------------------------------------------------------------------------------------
# Load generators


def wrk_version(wrk: str) -> str:
    """The first line wrk prints about itself."""
    result = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    lines = (result.stdout + result.stderr).strip().splitlines()
    return lines[0].strip() if lines else "wrk"


def lua_script(
    op: Operation, users: Sequence[BenchUser], threads: int, result_path: Path, acked_path: Path
) -> str:
    """The wrk Lua script for one run of ``op`` (``users``: one per write lane)."""

    def long_string(text: str) -> str:
        if "]==]" in text:
            raise ValueError(f"cannot embed {text!r} in a Lua long string")
        return text

    # The same body as rate_body(), with printf placeholders for (user, movie, rating).
    rate_template = '{"query":' + json.dumps(RATE_QUERY) + ',"variables":{"u":%d,"m":%d,"r":%.1f}}'
    replacements = {
        "@MODE@": "rate" if op.is_write else "cycle",
        "@MARKER@": long_string(op.marker),
        "@BODIES@": ",\n".join(f"  [==[{long_string(b)}]==]" for b in op.bodies),
        "@LANE_USERS@": ", ".join(str(u.id) for u in users),
        "@LANE_TOKENS@": ",\n".join(f"  [==[{long_string(u.token)}]==]" for u in users),
        "@THREADS@": str(threads),
        "@RATE_MOVIES@": ", ".join(str(m) for m in op.rate_movies),
        "@RATE_RATINGS@": ", ".join(f"{r:.1f}" for r in RATINGS),
        "@RATE_TEMPLATE@": long_string(rate_template),
        "@RESULT_PATH@": long_string(str(result_path)),
        "@ACKED_PATH@": long_string(str(acked_path)),
    }
    script = LUA_TEMPLATE
    for key, value in replacements.items():
        script = script.replace(key, value)
    return script


def parse_acked(text: str) -> list[tuple[int, int, float]]:
    """``user,movie,rating`` lines into tuples."""
    acked = []
    for line in text.splitlines():
        if line.strip():
            user, movie, rating = line.split(",")
            acked.append((int(user), int(movie), float(rating)))
    return acked


def run_wrk(
    wrk: str,
    url: str,
    op: Operation,
    *,
    duration_s: int,
    connections: int,
    threads: int,
    users: Sequence[BenchUser],
    stem: str,
    workdir: Path,
) -> LoadResult:
    """One bounded wrk run of ``op``; ``users``: the write lanes' users (writes only)."""
    result_path = workdir / f"{stem}.result.json"
    acked_path = workdir / f"{stem}.acked.txt"
    script_path = workdir / f"{stem}.lua"
    script_path.write_text(
        lua_script(op, users, threads, result_path, acked_path), encoding="utf-8"
    )
    command = [
        wrk,
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={duration_s}s",
        f"--timeout={REQUEST_TIMEOUT_S}s",
        f"--script={script_path}",
        f"{url}/graphql",
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 120, check=False
    )
    if completed.returncode != 0 or not result_path.is_file():
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    raw = json.loads(result_path.read_text(encoding="utf-8"))
    lat = raw["latency_us"]
    socket_errors = raw["errors"]
    return LoadResult(
        requests=int(raw["requests"]),
        duration_s=raw["duration_us"] / 1e6,
        latency_ms={
            "p50": lat["p50"] / 1000,
            "p90": lat["p90"] / 1000,
            "p99": lat["p99"] / 1000,
            "p99_9": lat["p999"] / 1000,
            "max": lat["max"] / 1000,
            "mean": lat["mean"] / 1000,
        },
        errors={
            # Lua counts every non-2xx (429 apart); wrk's own "status" errors are only >= 400,
            # so they are contained in them and not added again.
            "non_2xx": int(raw["non_2xx"]),
            "rate_limited": int(raw["rate_limited"]),
            "graphql_errors": int(raw["graphql_errors"]),
            "unexpected_body": int(raw["unexpected_body"]),
            "socket_connect": int(socket_errors["connect"]),
            "socket_read": int(socket_errors["read"]),
            "socket_write": int(socket_errors["write"]),
            "timeouts": int(socket_errors["timeout"]),
        },
        acked=parse_acked(acked_path.read_text(encoding="utf-8")) if op.is_write else [],
    )


def run_httpx(
    url: str,
    op: Operation,
    *,
    duration_s: int,
    connections: int,
    users: Sequence[BenchUser],
    stem: str,
    workdir: Path,
) -> LoadResult:
    """One bounded run of ``op`` by the asyncio + httpx generator, in a separate process."""
    spec_path = workdir / f"{stem}.spec.json"
    out_path = workdir / f"{stem}.httpx.json"
    spec = {
        "url": f"{url}/graphql",
        "duration_s": duration_s,
        "connections": connections,
        "marker": op.marker,
        "bodies": list(op.bodies),
        "rate_movies": list(op.rate_movies),
        "users": [[u.id, u.token] for u in users],
        "out": str(out_path),
    }
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    command = [sys.executable, "-m", "bench.serve", "--loadgen", str(spec_path)]
    completed = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=duration_s + 120,
        check=False,
    )
    if completed.returncode != 0 or not out_path.is_file():
        raise RuntimeError(f"load generator failed: {completed.stderr.strip()[-2000:]}")
    raw = json.loads(out_path.read_text(encoding="utf-8"))
    return LoadResult(
        requests=raw["requests"],
        duration_s=raw["duration_s"],
        latency_ms=raw["latency_ms"],
        errors=raw["errors"],
        acked=[(int(u), int(m), float(r)) for u, m, r in raw["acked"]],
    )


async def _httpx_load(spec: JsonDict) -> JsonDict:
    """The load itself: ``connections`` tasks, each sending one request at a time until the
    deadline, over one pooled client with that many connections."""
    url: str = spec["url"]
    marker: str = spec["marker"]
    bodies: list[str] = spec["bodies"]
    movies: list[int] = spec["rate_movies"]
    connections: int = spec["connections"]
    latencies: list[float] = []
    users = [BenchUser(id=int(u), token=str(t)) for u, t in spec["users"]]
    errors = dict.fromkeys(
        ("non_2xx", "rate_limited", "graphql_errors", "unexpected_body", "socket", "timeouts"), 0
    )
    acked: list[tuple[int, int, float]] = []
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def lane(client: httpx.AsyncClient, index: int, deadline: float) -> None:
        """One connection's requests; for writes it is write lane ``index`` (its user)."""
        k = 0
        offset = (index * 7919) % max(len(bodies), 1)
        headers = auth_headers(users[index]) if movies else {"Content-Type": "application/json"}
        clock = time.perf_counter
        while clock() < deadline:
            combo = None
            if movies:
                combo = (users[index].id, *rate_combo(index, k, movies))
                content = rate_body(*combo)
            else:
                content = bodies[(k + offset) % len(bodies)]
            k += 1
            start = clock()
            try:
                response = await client.post(url, content=content, headers=headers)
            except httpx.TimeoutException:
                errors["timeouts"] += 1
                continue
            except httpx.TransportError:
                errors["socket"] += 1
                continue
            latencies.append(clock() - start)
            text = response.text
            if response.status_code == 429:
                errors["rate_limited"] += 1
            elif not 200 <= response.status_code <= 299:
                errors["non_2xx"] += 1
            elif '"errors"' in text:
                errors["graphql_errors"] += 1
            elif marker not in text:
                errors["unexpected_body"] += 1
            elif combo is not None:
                acked.append(combo)

    async with httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        started = time.perf_counter()
        deadline = started + spec["duration_s"]
        await asyncio.gather(*(lane(client, i, deadline) for i in range(connections)))
        elapsed = time.perf_counter() - started
    ms = np.asarray(latencies or [0.0], dtype=np.float64) * 1000
    p50, p90, p99, p999 = (float(v) for v in np.percentile(ms, [50, 90, 99, 99.9]))
    return {
        "requests": len(latencies),
        "duration_s": elapsed,
        "latency_ms": {
            "p50": p50,
            "p90": p90,
            "p99": p99,
            "p99_9": p999,
            "max": float(ms.max()),
            "mean": float(ms.mean()),
        },
        "errors": errors,
        "acked": acked,
    }


def loadgen_main(spec_path: Path) -> int:
    """Entry point of ``python -m bench.serve --loadgen SPEC`` (the httpx fallback process)."""
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    result = asyncio.run(_httpx_load(spec))
    Path(spec["out"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------------------------
# Write check, targets, report


def check_writes(
    db_path: Path,
    loaded_ratings: int,
    acked: Sequence[tuple[int, int, float]],
    bench_users: Sequence[int],
) -> JsonDict:
    """Read the SQLite file back: every acknowledged write must be there with its rating, and
    the table must hold the loaded ratings plus rows of the benchmark's signed-up users only."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        total = connection.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
        rows = connection.execute(
            "SELECT user_id, movie_id, rating FROM ratings "
            "WHERE user_id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(set(bench_users))),),
        ).fetchall()
    finally:
        connection.close()
    stored = {(int(u), int(m)): float(r) for u, m, r in rows}
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


def evaluate_targets(
    results: dict[str, JsonDict], connections: int, writes: JsonDict | None
) -> list[JsonDict]:
    """Each target with its measured value and whether it was met."""
    targets: list[JsonDict] = []
    for name in ("recommendations", "recommendationsComputed"):
        if "typename" not in results or name not in results:
            continue
        ceiling = results["typename"]["req_per_s"]
        share = results[name]["req_per_s"] / ceiling if ceiling else 0.0
        targets.append(
            {
                "name": f"{name} req/s >= 50% of __typename req/s",
                "operation": name,
                "value": round(share, 3),
                "limit": TARGET_RECS_SHARE,
                "met": share >= TARGET_RECS_SHARE,
                "required": True,
            }
        )
    for name, result in results.items():
        p99 = result["p99_ms"]
        targets.append(
            {
                "name": f"{name} p99 <= {TARGET_P99_MS:g} ms at {TARGET_CONNECTIONS} connections",
                "operation": name,
                "value": p99,
                "limit": TARGET_P99_MS,
                "met": p99 <= TARGET_P99_MS,
                "required": result["p99_required"],
                **(
                    {}
                    if connections == TARGET_CONNECTIONS
                    else {"note": f"measured at {connections} connections"}
                ),
            }
        )
    if "rateMovie" in results:
        rate = results["rateMovie"]
        errors = rate["errors"]["total"] + (0 if writes is None or writes["ok"] else 1)
        met = rate["req_per_s"] >= TARGET_WRITES_PER_S and errors == 0
        targets.append(
            {
                "name": f"rateMovie >= {TARGET_WRITES_PER_S:g} writes/s on SQLite, zero errors, "
                "every acknowledged write stored",
                "operation": "rateMovie",
                "value": rate["req_per_s"],
                "limit": TARGET_WRITES_PER_S,
                "errors": rate["errors"]["total"],
                "writes_verified": None if writes is None else writes["ok"],
                "met": met,
                "required": True,
            }
        )
    return targets


def print_table(
    title: str, results: dict[str, JsonDict], targets: Sequence[JsonDict], tool: str
) -> None:
    """The per-operation figures and the targets, as text."""
    print(f"\n{title} (load tool: {tool})")
    header = (
        f"{'operation':<16}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'cpu%':>7}"
        f"{'other%':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        cpu = r.get("server_cpu_percent")
        other = r.get("other_cpu_percent")
        cpu_text = "-" if cpu is None else f"{cpu:.0f}"
        other_text = "-" if other is None else f"{other:.0f}"
        print(
            f"{name:<16}{r['req_per_s']:>10.1f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
            f"{r['errors']['total']:>8}{cpu_text:>7}{other_text:>8}"
        )
    print()
    for target in targets:
        status = "met" if target["met"] else ("MISSED" if target["required"] else "missed (info)")
        print(f"{status:<14} {target['name']}: {target['value']}")


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


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.serve", description="Load-test the GraphQL server on loopback."
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per operation")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
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
        choices=("sqlite", "postgres-redis"),
        default="sqlite",
        help="sqlite: a temporary SQLite file and in-process limits (default); postgres-redis: "
        f"a temporary database on {POSTGRES_ADMIN_URL.rsplit('/', 1)[0]} and rate limits in "
        f"{REDIS_URL} (read operations only: writes are verified on SQLite)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--loadgen", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loadgen is None:
        if not 1 <= args.duration <= 600:
            parser.error("--duration must be 1-600 seconds")
        if not 1 <= args.connections <= MAX_LANES:
            parser.error(f"--connections must be 1-{MAX_LANES}")
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


MEDIAN_FIGURES = ("req_per_s", "p50_ms", "p90_ms", "p99_ms", "mean_ms")
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
                "max_ms",
                "server_cpu_percent",
                "other_cpu_percent",
                "steal_cpu_percent",
            )
        }
        | {"errors": sum(run["errors"].values())}
        for run in runs
    ]
    return combined


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

    def sign_up(self, server: Server, op: Operation) -> list[BenchUser]:
        """One new user per write lane (``--connections``) for a write run, else none."""
        if not op.is_write:
            return []
        users = sign_up_users(server.url, self.args.connections)
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
                connections=args.connections,
                threads=args.threads,
                users=users,
                stem=stem,
                workdir=self.workdir,
            )
        return run_httpx(
            server.url,
            op,
            duration_s=duration,
            connections=args.connections,
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
            "max_ms": round(result.latency_ms["max"], 3),
            "mean_ms": round(result.latency_ms["mean"], 3),
            "errors": dict(result.errors),
            "warmup_errors": warmup_errors,
            "acknowledged_writes": len(result.acked) if op.is_write else None,
            "write_users": len(users) if op.is_write else None,
            "p99_required": op.p99_required,
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
            f"errors {result.error_total}, server cpu {server_cpu}%, other cpu {other_cpu}% "
            f"(steal {figures['steal_cpu_percent']}%)"
            + (f" {sorted(by_process.values(), reverse=True)}" if len(by_process) > 1 else "")
        )
        return figures


def tool_info(tool: str, wrk: str | None, args: argparse.Namespace) -> JsonDict:
    """Which load generator ran, and how."""
    if tool == "wrk" and wrk is not None:
        return {
            "name": "wrk",
            "version": wrk_version(wrk),
            "threads": args.threads,
            "script": "generated Lua: per-request bodies (writes: per-lane user and bearer "
            "token), every response body checked",
        }
    return {
        "name": "httpx",
        "version": httpx.__version__,
        "note": "asyncio + httpx in a separate process (wrk not used); one Python process "
        "is a much lower ceiling than wrk, so the figures may be client-bound",
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write the results; 0 when it ran (targets may still be missed)."""
    args = parse_args(argv)
    if args.loadgen is not None:
        return loadgen_main(args.loadgen)

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
    ops = operations(catalog_movie_ids(data_dir))
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

    on_postgres = args.backbone == "postgres-redis"
    if on_postgres and any(op.name == "rateMovie" for op in ops):
        print("bench.serve: --backbone postgres-redis measures reads; add --only", file=sys.stderr)
        return 2
    limits = {
        "reads": BENCH_RATE_LIMIT,
        "writes": BENCH_RATE_LIMIT,
        "storage": REDIS_URL if on_postgres else RATE_LIMIT_STORAGE,
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
            check_writes(db_path, loaded_ratings, runner.acked, runner.bench_users)
            if runner.acked or runner.bench_users
            else None
        )

    targets = evaluate_targets(main_suite.results, args.connections, writes)
    command = shlex.join(["python", "-m", "bench.serve", *(argv or sys.argv[1:])])
    payload: JsonDict = {
        "benchmark": "serve",
        "created_at": started_at.isoformat(timespec="seconds"),
        "command": command,
        "environment": {k: os.environ.get(k) for k in (ARTIFACTS_ENV, DATA_ENV)},
        "machine": {**machine_info(), "load_average_at_start": load_at_start},
        "code": code,
        "tool": tool_info(tool, wrk, args),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeat": args.repeat,
            "connections": args.connections,
            "request_timeout_s": REQUEST_TIMEOUT_S,
            "workers": args.workers,
            "event_loop": Settings().event_loop,  # the servers inherit this environment
            "rate_limits": {
                **limits,
                "note": "RECSYS_GQL_RATE_LIMIT_READS/_WRITES/_STORAGE of every benchmark "
                "server: the limiter is consulted on every request but never refuses one "
                + (
                    "(Redis: one count shared by every worker)"
                    if on_postgres
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
    }
    if extra_suite is not None:
        extra_targets = evaluate_targets(extra_suite.results, args.connections, None)
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
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
