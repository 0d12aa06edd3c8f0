"""Can a few clients sending the costliest accepted queries hurt everyone else?

Run from the repository root (needs Debian's ``wrk``, and ``make serve``'s setup)::

    python -m bench.query_cost_load [--duration 10] [--repeat 3]

One ``recsys-gql serve`` worker on a temporary SQLite copy, rate limits raised out of the way
(but consulted on every request). For each candidate of "the most expensive accepted query"
(each priced just under ``RECSYS_GQL_MAX_QUERY_COST`` by the server's own cost model, every
request a different movie, user or text so no cache answers it), in rounds:

- **alone:** 28 connections of ``{ __typename }`` for ``--duration`` seconds;
- **beside it:** the same 28, while 4 more connections send the candidate as fast as the
  server answers them (two wrk processes at once).

It reports the typename clients' req/s and p50/p99/p99.9 in both runs, the candidates' own
rate and latency, and the ratio of the typename p99 beside a candidate to its p99 alone
(target: at most 3, issue 16), medians over rounds, in ``bench/results/query_cost_load.json``.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import statistics
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from graphql import parse

from bench.common import machine_info, write_json_atomic
from bench.serve_harness import (
    artifacts_root,
    catalog_movie_ids,
    code_version,
    data_folder,
    init_temporary_database,
    load_average,
    machine_cpu_seconds,
    missing_inputs,
    running_server,
)
from bench.serve_load import LoadResult, run_wrk
from bench.serve_workloads import READ_MARKER, Operation, body, search_texts, uniform_users
from recsys_gql.api.cost import CostModel
from recsys_gql.api.schema import build_schema
from recsys_gql.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "query_cost_load.json"
TYPENAME_CONNECTIONS = 28
COSTLY_CONNECTIONS = 4
TARGET_P99_RATIO = 3.0
BODIES = 3000
SEED = 16
MAX_ALIASES = 30
"""RECSYS_GQL_MAX_QUERY_ALIASES' default."""

Variables = dict[str, Any]


@dataclass(frozen=True)
class Candidate:
    """A costly shape, and the variables each of its requests gets."""

    name: str
    query: str
    variables: Callable[[int], Variables]


def _shapes(
    movies: Sequence[int], users: Sequence[int], texts: Sequence[str]
) -> list[tuple[str, Callable[[int], str], Callable[[int, int], Variables], int]]:
    """(name, query for a size, variables for request i and a size, largest size): each shape
    grows with its size (a page size, or how many aliases)."""

    def searches(size: int) -> str:
        variables = ", ".join(f"$q{k}: String!" for k in range(size))
        fields = " ".join(
            f"s{k}: searchMovies(query: $q{k}, first: 10) {{ score movie {{ title }} }}"
            for k in range(size)
        )
        return f"query ({variables}) {{ {fields} }}"

    def pages(size: int) -> str:
        fields = " ".join(
            f"p{k}: movies(search: $s, first: 100) "
            "{ totalCount edges { node { id title year genres } } }"
            for k in range(size)
        )
        return f"query ($s: String) {{ {fields} }}"

    return [
        (
            "similar of similar",
            lambda n: (
                "query ($m: Int!) { similarMovies(movieId: $m, first: 50) "
                f"{{ movie {{ similar(first: {n}) {{ movie {{ title year genres }} }} }} }} }}"
            ),
            lambda i, _: {"m": movies[i]},
            100,
        ),
        (
            "recommendations with similar",
            lambda n: (
                "query ($u: Int!, $a: Float) { recommendations(userId: $u, first: 100, "
                f"alpha: $a) {{ score movie {{ title similar(first: {n}) "
                "{ movie { title } } } } }"
            ),
            lambda i, _: {"u": users[i], "a": round(0.2 + i * 1e-6, 6)},  # never from the memo
            100,
        ),
        (
            "aliased searches",
            searches,
            lambda i, n: {f"q{k}": texts[(n * i + k) % len(texts)] for k in range(n)},
            MAX_ALIASES,
        ),
        (
            "aliased catalog pages",
            pages,
            lambda i, _: {"s": texts[i % len(texts)].split()[0]},
            MAX_ALIASES,
        ),
    ]


def _at_size(variables: Callable[[int, int], Variables], size: int) -> Callable[[int], Variables]:
    return lambda i: variables(i, size)


def candidates(
    movie_ids: Sequence[int], texts: Sequence[str], model: CostModel, limit: int
) -> list[Candidate]:
    """Each shape at the largest size whose cost is within ``limit``: the costliest accepted
    queries of their kind."""
    users = uniform_users(BODIES, SEED)
    rng = np.random.default_rng(SEED)
    movies = [int(m) for m in rng.choice(np.asarray(movie_ids), size=BODIES)]
    chosen = []
    for name, query, variables, largest in _shapes(movies, users, texts):
        fits = [
            size
            for size in range(1, largest + 1)
            if model.estimate(parse(query(size)), None, variables(0, size)) <= limit
        ]
        if fits:
            size = fits[-1]
            chosen.append(Candidate(f"{name} ({size})", query(size), _at_size(variables, size)))
    return chosen


def typename_operation() -> Operation:
    return Operation(
        name="typename", marker='{"data":{"__typename"', bodies=(body("{ __typename }", {}),)
    )


def candidate_operation(candidate: Candidate) -> Operation:
    bodies = tuple(body(candidate.query, candidate.variables(i)) for i in range(BODIES))
    return Operation(name=candidate.name, marker=READ_MARKER, bodies=bodies)


def check_accepted(url: str, candidate: Candidate, model: CostModel, limit: int) -> int:
    """The candidate's cost; raises unless the server answers it whole (200, no errors)."""
    variables = candidate.variables(BODIES - 1)
    cost = model.estimate(parse(candidate.query), None, variables)
    if cost > limit:
        raise RuntimeError(f"{candidate.name} costs {cost}, over the limit {limit}")
    response = httpx.post(
        f"{url}/graphql", json={"query": candidate.query, "variables": variables}, timeout=60
    )
    if response.status_code != 200 or "errors" in response.json():
        raise RuntimeError(f"{candidate.name}: {response.status_code} {response.text[:300]}")
    return cost


def summary(result: LoadResult) -> dict[str, Any]:
    return {
        "req_per_s": round(result.req_per_s, 1),
        "latency_ms": {k: round(v, 2) for k, v in result.latency_ms.items()},
        "errors": result.error_total,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over every candidate")
    parser.add_argument("--only", nargs="*", help="candidate names to run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    artifacts, data_dir = artifacts_root(), data_folder()
    problems = missing_inputs(artifacts, data_dir) + ([] if wrk else ["wrk is not installed"])
    if problems:
        print("cannot run: " + "; ".join(problems), file=sys.stderr)
        return 2
    assert wrk is not None
    settings = Settings()
    model = CostModel(build_schema(settings)._schema)
    movie_ids = catalog_movie_ids(data_dir)
    texts = search_texts(data_dir, BODIES * 12, SEED)
    shapes = candidates(movie_ids, texts, model, settings.max_query_cost)
    chosen = [c for c in shapes if not args.only or c.name.split(" (")[0] in args.only]
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as scratch:
        workdir = Path(scratch)
        url_db, _, _ = init_temporary_database(workdir / "recsys.db", data_dir)
        env = {
            "RECSYS_GQL_DATABASE_URL": url_db,
            "RECSYS_GQL_ARTIFACTS_DIR": str(artifacts),
            "RECSYS_GQL_DATA_DIR": str(data_dir.parents[1]),
            "RECSYS_GQL_RATE_LIMIT_READS": "100000000/minute",
            "RECSYS_GQL_RATE_LIMIT_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        }
        rounds: dict[str, list[dict[str, Any]]] = {c.name: [] for c in chosen}
        costs: dict[str, int] = {}
        cpu_before = machine_cpu_seconds()
        with running_server(env, workdir / "server.log", 1) as server:
            for candidate in chosen:
                costs[candidate.name] = check_accepted(
                    server.url, candidate, model, settings.max_query_cost
                )
            typename = typename_operation()
            for index in range(args.repeat):
                for candidate in chosen:
                    stem = f"r{index}-{candidate.name.replace(' ', '-')}"

                    def load(
                        op: Operation, connections: int, tag: str, stem: str = stem
                    ) -> LoadResult:
                        return run_wrk(
                            wrk,
                            server.url,
                            op,
                            duration_s=args.duration,
                            connections=connections,
                            threads=1,
                            users=[],
                            stem=f"{stem}-{tag}",
                            workdir=workdir,
                        )

                    alone = load(typename, TYPENAME_CONNECTIONS, "alone")
                    costly = candidate_operation(candidate).for_round(index, args.repeat)
                    with ThreadPoolExecutor(2) as pool:
                        beside_future = pool.submit(load, typename, TYPENAME_CONNECTIONS, "beside")
                        costly_future = pool.submit(load, costly, COSTLY_CONNECTIONS, "costly")
                        beside, heavy = beside_future.result(), costly_future.result()
                    ratio = beside.latency_ms["p99"] / alone.latency_ms["p99"]
                    rounds[candidate.name].append(
                        {
                            "typename_alone": summary(alone),
                            "typename_beside": summary(beside),
                            "costly": summary(heavy),
                            "p99_ratio": round(ratio, 2),
                        }
                    )
                    print(
                        f"round {index + 1} {candidate.name:30s} typename p99 "
                        f"{alone.latency_ms['p99']:6.1f} -> {beside.latency_ms['p99']:6.1f} ms "
                        f"({ratio:4.2f}x); costly {heavy.req_per_s:6.1f} req/s "
                        f"p99 {heavy.latency_ms['p99']:7.1f} ms",
                        flush=True,
                    )
        cpu_after = machine_cpu_seconds()
    results = {
        name: {
            "cost": costs[name],
            "p99_ratio_median": round(statistics.median(r["p99_ratio"] for r in runs), 2),
            "met": statistics.median(r["p99_ratio"] for r in runs) <= TARGET_P99_RATIO,
            "rounds": runs,
        }
        for name, runs in rounds.items()
    }
    payload = {
        "benchmark": "query_cost_load",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.query_cost_load " + shlex.join(argv or sys.argv[1:]),
        "code": code_version(),
        "machine": {**machine_info(), "load_average_after": load_average()},
        "machine_cpu_seconds": {"before": cpu_before, "after": cpu_after},
        "max_query_cost": Settings().max_query_cost,
        "connections": {"typename": TYPENAME_CONNECTIONS, "costly": COSTLY_CONNECTIONS},
        "duration_s": args.duration,
        "target_p99_ratio": TARGET_P99_RATIO,
        "candidates": results,
    }
    write_json_atomic(args.out, payload)
    for name, result in results.items():
        verdict = "met" if result["met"] else "MISSED"
        print(
            f"{name:30s} cost {result['cost']:6d}  "
            f"p99 ratio {result['p99_ratio_median']:.2f} {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
