"""In-process latency benchmark of the serving engine on a trained artifact run.

Run from the repository root::

    python -m bench.engine [--artifacts PATH] [--out bench/results/engine.json] [--calls 1000]

``--artifacts`` defaults to ``$RECSYS_GQL_ARTIFACTS_DIR/current``, else ``artifacts/current``
(built by ``make train``). The engine is loaded once, then each operation is warmed up and
called ``--calls`` times, each call timed alone with :func:`time.perf_counter`:

* ``recommend_known``: ``recommend(user, n=10)`` cycling through every known user id (the
  engine reads the user's training ratings): the ranking stage, explained;
* ``recommend_unexplained``: the same with ``explain_results=False`` (what the API asks when a
  query selects no explanation);
* ``recommend_blend``: the same with ``alpha=0.5``: the linear blend, explained;
* ``recommend_fold_in``: ``recommend(user, n=10, ratings=...)`` with the user's training ratings
  plus one new 5-star rating on a movie they have not rated (a different movie each call), so
  the request's ratings are folded in; building that dict is not timed;
* ``recommend_cold``: ``recommend(unknown_id, n=10)`` for users with no ratings (popularity);
* ``similar``: ``similar(movie, n=10)`` cycling through movie ids;
* ``search``: ``search(query, n=10)`` cycling through varied free-text queries. The first search
  loads the sentence-transformers model; that time is reported apart, as ``model_load_seconds``.

Percentiles (p50/p90/p99, max, mean) are in milliseconds and checked against the targets below.
Machine information (CPUs, memory, Python/NumPy versions, BLAS/OpenMP thread pools, load average)
and the artifacts' run id are recorded with the exact command, the JSON is written atomically,
and a short table is printed. Close other heavy processes first: the figures are wall times.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import latency_summary, write_json_atomic
from bench.common import machine_info as shared_machine_info
from recsys_gql.errors import RecsysError
from recsys_gql.recsys.diversity import DEFAULT_DIVERSITY
from recsys_gql.recsys.engine import Engine

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "engine.json"
ARTIFACTS_ENV = "RECSYS_GQL_ARTIFACTS_DIR"
N = 10
WARMUP_CALLS = 20
SEED = 42

JsonDict = dict[str, Any]

QUERIES: tuple[str, ...] = (
    "a heist in space with a sarcastic robot",
    "feel-good animated movie about toys that come alive",
    "slow-burning psychological horror in an isolated house",
    "romantic comedy set in New York at Christmas",
    "gritty crime drama about a corrupt police officer",
    "epic fantasy quest to destroy a magical ring",
    "documentary about climate change and the oceans",
    "courtroom drama where a lawyer defends an innocent man",
    "time travel paradox thriller",
    "coming-of-age story of teenagers in a small town",
    "martial arts revenge film with spectacular fight scenes",
    "war movie about soldiers landing on a beach in 1944",
    "musical about a struggling jazz pianist in Los Angeles",
    "zombie apocalypse survival",
    "a dog finds its way home across the country",
    "superhero team saves the world from an alien invasion",
    "french art-house film about love and loneliness",
    "wild west bounty hunter seeks justice",
    "artificial intelligence becomes self-aware and escapes its creators",
    "spy thriller with car chases across Europe",
)

# Targets in milliseconds: {operation: {statistic: limit}}. Search has none.
TARGETS_MS: dict[str, dict[str, float]] = {
    "recommend_known": {"p50": 2.0, "p99": 10.0},
    "recommend_fold_in": {"p99": 20.0},
    "similar": {"p50": 1.0},
}


def default_artifacts() -> Path:
    """``$RECSYS_GQL_ARTIFACTS_DIR/current`` when set, else ``artifacts/current`` in the repo."""
    root = os.environ.get(ARTIFACTS_ENV)
    return (Path(root) if root else REPO_ROOT / "artifacts") / "current"


def thread_pools() -> list[JsonDict]:
    """The native thread pools loaded in this process (BLAS, OpenMP) and their thread counts."""
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "prefix", "num_threads", "version", "threading_layer")
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info()]


def machine_info() -> JsonDict:
    """CPU count, memory, platform, Python and NumPy versions, thread settings, load average."""
    env_threads = {
        name: os.environ.get(name)
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    }
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        **shared_machine_info(),
        "numpy": np.__version__,
        "thread_env": env_threads,
        "thread_pools": thread_pools(),
        "load_average_at_start": load,
        "blas_threads": sorted(
            {int(p["num_threads"]) for p in thread_pools() if p["user_api"] == "blas"}
        ),
    }


def time_calls(call: Callable[[int], object], calls: int, warmup: int = WARMUP_CALLS) -> JsonDict:
    """Warm up with ``warmup`` calls, then time ``call(i)`` for i in ``0..calls-1``."""
    for i in range(warmup):
        call(calls + i)  # indices after the timed ones, so warm-up does not pre-touch them
    durations = []
    clock = time.perf_counter
    for i in range(calls):
        start = clock()
        call(i)
        durations.append(clock() - start)
    return latency_summary(durations, digits=4)


def fold_in_requests(engine: Engine, count: int) -> list[tuple[int, dict[int, float]]]:
    """``count`` (user, ratings) pairs: a user's training ratings plus one new 5-star rating on
    a movie they have not rated, cycling users and drawing a different movie for each."""
    rng = np.random.default_rng(SEED)
    users = engine.users.ids
    movies = engine.movies.ids
    requests = []
    for i in range(count):
        user = int(users[i % users.size])
        ratings = engine.training_ratings(user)
        while (movie := int(movies[rng.integers(movies.size)])) in ratings:
            pass
        requests.append((user, {**ratings, movie: 5.0}))
    return requests


def check_targets(operations: dict[str, JsonDict]) -> dict[str, dict[str, JsonDict]]:
    """For each target: the limit, the measured value and whether it was met."""
    out: dict[str, dict[str, JsonDict]] = {}
    for op, limits in TARGETS_MS.items():
        out[op] = {}
        for stat, limit in limits.items():
            value = float(operations[op][f"{stat}_ms"])
            out[op][stat] = {"limit_ms": limit, "value_ms": value, "met": value <= limit}
    return out


def benchmark(artifacts: Path, calls: int, command: str) -> JsonDict:
    """Load the engine from ``artifacts`` and time every operation ``calls`` times."""
    started = datetime.now(UTC)
    start = time.perf_counter()
    engine = Engine.load(artifacts)
    load_seconds = time.perf_counter() - start
    machine = machine_info()  # after loading: the engine sets its BLAS limit, FAISS is loaded
    users = engine.users.ids
    movies = engine.movies.ids
    unknown = int(users.max()) + 1_000_000

    operations: dict[str, JsonDict] = {}
    operations["recommend_known"] = time_calls(
        lambda i: engine.recommend(int(users[i % users.size]), n=N), calls
    )
    operations["recommend_unexplained"] = time_calls(
        lambda i: engine.recommend(int(users[i % users.size]), n=N, explain_results=False), calls
    )
    # What the API sends by default: no explanations, MMR at the default diversity.
    operations["recommend_default"] = time_calls(
        lambda i: engine.recommend(
            int(users[i % users.size]), n=N, explain_results=False, diversity=DEFAULT_DIVERSITY
        ),
        calls,
    )
    if engine.ranker is not None:  # the same on LightGBM's own predict, for the ratio
        plain = Engine.load(artifacts, ranker_backend="lightgbm")
        operations["recommend_default_lightgbm_trees"] = time_calls(
            lambda i: plain.recommend(
                int(users[i % users.size]), n=N, explain_results=False,
                diversity=DEFAULT_DIVERSITY,
            ),
            calls,
        )  # fmt: skip
        del plain
    operations["recommend_blend"] = time_calls(
        lambda i: engine.recommend(int(users[i % users.size]), n=N, alpha=0.5), calls
    )
    requests = fold_in_requests(engine, calls + WARMUP_CALLS)
    operations["recommend_fold_in"] = time_calls(
        lambda i: engine.recommend(requests[i][0], n=N, ratings=requests[i][1]), calls
    )
    operations["recommend_cold"] = time_calls(lambda i: engine.recommend(unknown + i, n=N), calls)
    operations["similar"] = time_calls(
        lambda i: engine.similar(int(movies[i % movies.size]), n=N), calls
    )
    start = time.perf_counter()
    engine.search(QUERIES[-1], n=N)  # loads the sentence-transformers model
    model_load_seconds = time.perf_counter() - start
    operations["search"] = time_calls(
        lambda i: engine.search(QUERIES[i % len(QUERIES)], n=N), calls
    )

    try:
        import torch

        machine["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch is a dependency
        machine["torch_threads"] = None
    machine["thread_pools_after_search"] = thread_pools()
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    targets = check_targets(operations)
    return {
        "benchmark": "engine in-process latency, n=10, one call at a time",
        "timestamp": started.isoformat(timespec="seconds"),
        "command": command,
        "machine": machine,
        "artifacts": {
            "path": str(artifacts),
            "run_id": engine.manifest.run_id,
            "ranking_stage": engine.ranker is not None,
            "ranker_trees": None if engine.ranker is None else engine.ranker.trees.backend,
            "arms": [arm.name for arm in engine.arms],
            "movies": len(engine.movies),
            "users": len(engine.users),
        },
        "calls_per_operation": calls,
        "warmup_calls": WARMUP_CALLS,
        "engine_load_seconds": round(load_seconds, 3),
        "model_load_seconds": round(model_load_seconds, 3),
        "operations": operations,
        "targets": targets,
        "all_targets_met": all(t["met"] for op in targets.values() for t in op.values()),
    }


def format_table(payload: JsonDict) -> str:
    """A short plain-text table: latency percentiles per operation and the target verdicts."""
    stats = ("p50", "p90", "p99", "max", "mean")
    header = f"{'operation':<20}" + "".join(f"{s + ' ms':>10}" for s in stats) + "  target"
    lines = [header, "-" * len(header)]
    for op, result in payload["operations"].items():
        verdicts = [
            f"{stat}≤{t['limit_ms']:g} {'ok' if t['met'] else 'MISS'}"
            for stat, t in payload["targets"].get(op, {}).items()
        ]
        cells = "".join(f"{result[f'{s}_ms']:>10.3f}" for s in stats)
        lines.append(f"{op:<20}{cells}  {', '.join(verdicts) or '-'}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine", description="Benchmark the engine's per-call latency."
    )
    parser.add_argument(
        "--artifacts",
        type=Path,
        default=None,
        help=f"artifact run to load (default: ${ARTIFACTS_ENV}/current, else artifacts/current)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"JSON result file (default: {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--calls", type=int, default=1000, help="timed calls per operation (default: 1000)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the benchmark, write the JSON and print a summary table."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    artifacts: Path = args.artifacts or default_artifacts()
    if not (artifacts / "manifest.json").is_file():
        print(
            f"bench.engine: no trained artifacts at {artifacts}: run `make train` first "
            f"(or pass --artifacts PATH)",
            file=sys.stderr,
        )
        return 2
    command = shlex.join([Path(sys.executable).name, "-m", "bench.engine", *args_list])
    try:
        payload = benchmark(artifacts, args.calls, command)
    except RecsysError as exc:
        print(f"bench.engine: error: {exc.message}", file=sys.stderr)
        return 2
    write_json_atomic(args.out, payload)
    machine = payload["machine"]
    blas = ", ".join(f"{p['prefix']}={p['num_threads']}" for p in machine["thread_pools"])
    print(
        f"engine latency — run {payload['artifacts']['run_id']}, {machine['cpu_count']} CPUs, "
        f"{machine['memory_gb']} GB, Python {machine['python']}, NumPy {machine['numpy']}, "
        f"threads: {blas}"
    )
    print(
        f"engine load {payload['engine_load_seconds']:.2f}s, "
        f"search model load {payload['model_load_seconds']:.2f}s, {args.calls} calls each"
    )
    print(format_table(payload))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
