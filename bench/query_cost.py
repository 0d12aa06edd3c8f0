"""Measures what the schema's cost weights stand for, in-process, on the trained run.

Run from the repository root (after ``make serve``'s setup: artifacts and ``data/recsys.db``)::

    python -m bench.query_cost [--out bench/results/query_cost.json] [--calls 200]

One *cost unit* is the work of resolving one object. The benchmark executes the schema
directly (``schema.execute`` with the app's own lifespan state and request context, on a
temporary copy of the database, recommendation memo off), each probe over varied inputs —
every user in turn, movies spread over the catalog, distinct search texts — and times the
process's CPU (all threads: the sentence encoder runs on torch's own):

- the unit: ``similarMovies(first: 50)`` selecting ``movie { id title year genres }`` minus
  the same selecting only ``similarity``, per movie;
- each engine- or database-backed field: its probe's CPU minus ``{ __typename }``'s (what
  every operation costs) minus one unit per object the answer holds, in units.

It then prices every query of ``examples/`` and of the web page with the cost model, and
reports CPU per estimated unit for a mix of queries, so the weights and the default limits
(``RECSYS_GQL_MAX_QUERY_COST``, ``RECSYS_GQL_QUERY_COST_PER_READ``) can be checked against
measurements. Last, it runs each costly shape of ``bench.query_cost_load`` in-process beside
a ticker and reports the longest the event loop went without a turn (``loop_stalls``).

The weights declared in ``recsys_gql/api/weights.py`` follow the ``weights`` this writes to
``bench/results/query_cost.json`` (``tests/api/test_query_cost.py`` holds them to it).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import re
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graphql import get_introspection_query, parse

from bench.common import machine_info, write_json_atomic
from bench.engine import QUERIES
from recsys_gql.api.cost import CostModel
from recsys_gql.api.schema import RecsysSchema, build_schema
from recsys_gql.api.security import Viewer
from recsys_gql.api.view import request_context
from recsys_gql.app import create_app
from recsys_gql.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "query_cost.json"
WEB_OPERATIONS = REPO_ROOT / "recsys_gql" / "web" / "src" / "operations.ts"

Variables = dict[str, Any]
ROUNDS = 5


@dataclass(frozen=True)
class Probe:
    """A query, the inputs it cycles through, and the field whose weight it measures."""

    name: str
    query: str
    inputs: Callable[[int], Variables]
    field: str | None = None
    """``Type.field`` whose weight this probe gives (``None``: a reference)."""
    minus: str | None = None
    """The probe whose CPU to subtract first (a field measured on top of another)."""
    per: int = 1
    """How many calls of the field one execution makes."""
    flat: bool = False
    """Priced flat, its objects included (introspection)."""
    calls: int | None = None


def objects_in(value: Any) -> int:
    """How many objects (JSON objects) an answer holds, the root excluded."""
    if isinstance(value, dict):
        return sum(1 + objects_in(v) for v in value.values() if isinstance(v, dict)) + sum(
            objects_in(v) for v in value.values() if isinstance(v, list)
        )
    if isinstance(value, list):
        return sum((1 if isinstance(v, dict) else 0) + objects_in(v) for v in value)
    return 0


def web_operations() -> dict[str, str]:
    """Every operation the web page sends, by name, from its ``operations.ts``."""
    text = WEB_OPERATIONS.read_text(encoding="utf-8")
    documents = re.findall(r"graphql\(`(.*?)`\)", text, flags=re.DOTALL)
    named = {}
    for document in documents:
        match = re.search(r"(query|mutation|subscription)\s+(\w+)", document)
        assert match, document
        named[match.group(2)] = document
    return named


def example_operations() -> dict[str, str]:
    """Every query of ``examples/``, by file name."""
    return {
        p.stem: p.read_text(encoding="utf-8")
        for p in sorted((REPO_ROOT / "examples").glob("*.graphql"))
    }


def probes(users: list[int], movies: list[int], token_user: int) -> list[Probe]:
    def user(i: int) -> Variables:
        return {"u": users[i % len(users)]}

    def movie(i: int) -> Variables:
        return {"m": movies[(i * 37) % len(movies)]}

    def text(i: int) -> Variables:
        return {"q": f"{QUERIES[i % len(QUERIES)]} {i}"}  # never a repeat

    genres = ["Comedy", "Drama", "Action", "Animation", "Horror", "Sci-Fi", "Romance"]
    return [
        Probe("typename", "{ __typename }", lambda i: {}),
        Probe(
            "unit_base",
            "query($m:Int!){ similarMovies(movieId:$m, first:50){ similarity } }",
            movie,
        ),
        Probe(
            "unit_movies",
            "query($m:Int!){ similarMovies(movieId:$m, first:50)"
            "{ similarity movie { id title year genres } } }",
            movie,
        ),
        Probe(
            "recommendations",
            "query($u:Int!){ recommendations(userId:$u, first:10){ score } }",
            user,
            field="Query.recommendations",
        ),
        Probe(
            "explanation",
            "query($u:Int!){ recommendations(userId:$u, first:10)"
            "{ score explanation { summary } } }",
            user,
            field="Recommendation.explanation",
            minus="recommendations",
            per=10,
        ),
        Probe(
            "similar_graph",
            "query($m:Int!){ similarMovies(movieId:$m, first:10){ similarity } }",
            movie,
        ),
        Probe(
            "similar",
            "query($m:Int!){ similarMovies(movieId:$m, first:100){ similarity } }",
            movie,
            field="Query.similarMovies",
        ),
        Probe(
            "search",
            "query($q:String!){ searchMovies(query:$q, first:10){ score } }",
            text,
            field="Query.searchMovies",
            calls=60,
        ),
        Probe(
            "popular",
            "query($g:[String!]){ popularMovies(first:10, genres:$g){ id } }",
            lambda i: {"g": [genres[i % len(genres)]] if i % 2 else None},
            field="Query.popularMovies",
        ),
        Probe(
            "movies",
            "query($s:String){ movies(search:$s, first:20){ totalCount edges { node { id } } } }",
            lambda i: {"s": ["star", "love", "the", "man", "war", "night", None][i % 7]},
            field="Query.movies",
        ),
        Probe(
            "popular20",
            "{ popularMovies(first:20){ id } }",
            lambda i: {},
        ),
        Probe(
            "movie_stats",
            "{ popularMovies(first:20){ id ratingsCount } }",
            lambda i: {},
            field="Movie.ratingsCount",
            minus="popular20",
            per=20,
        ),
        Probe(
            "user_ratings_count",
            "query($u:Int!){ user(id:$u){ ratingsCount } }",
            user,
            field="User.ratingsCount",
        ),
        Probe(
            "user_ratings",
            "query($u:Int!){ user(id:$u)"
            "{ ratings(first:20){ totalCount edges { node { rating } } } } }",
            user,
            field="User.ratings",
        ),
        Probe("health", "{ health { ok } }", lambda i: {}, field="Query.health"),
        Probe(
            "introspection",
            get_introspection_query(),
            lambda i: {},
            field="__schema",
            flat=True,
            calls=30,
        ),
        Probe(
            "rate_movie",
            "mutation($u:Int!,$m:Int!,$r:Float!)"
            "{ rateMovie(input:{userId:$u, movieId:$m, rating:$r}){ __typename } }",
            lambda i: {
                "u": token_user,
                "m": movies[(i * 37) % len(movies)],
                "r": 0.5 + (i % 10) / 2,
            },
            field="Mutation.rateMovie",
        ),
        Probe("sign_up", "mutation { signUp { token } }", lambda i: {}, field="Mutation.signUp"),
        Probe(
            "hide_movie",
            "mutation($m:Int!){ hideMovie(movieId:$m){ __typename } }",
            lambda i: {"m": movies[(i * 37) % len(movies)]},
            field="Mutation.hideMovie",
        ),
    ]


def cpu_now() -> float:
    return time.process_time()


def trimmed_mean(values: list[float]) -> float:
    """The mean without the lowest and highest tenth: robust to a preempted call, yet still
    weighing inputs that cost more (heavy users) as a mean does."""
    ordered = sorted(values)
    cut = len(ordered) // 10
    return statistics.fmean(ordered[cut : len(ordered) - cut] or ordered)


async def run_probe(
    schema: RecsysSchema,
    state: dict[str, Any],
    probe: Probe,
    calls: int,
    viewer: Viewer,
    first_input: int = 0,
) -> tuple[list[float], list[float], int]:
    """(CPU seconds, wall seconds, objects in the last answer) of ``calls`` runs, on the
    inputs from ``first_input`` on (after a warm-up of the parse and validation caches)."""
    document = probe.query
    for i in range(3):
        await execute(schema, state, document, probe.inputs(1_000_000 + i), viewer)
    cpu: list[float] = []
    wall: list[float] = []
    objects = 0
    for i in range(first_input, first_input + calls):
        variables = probe.inputs(i)
        c0, w0 = cpu_now(), time.perf_counter()
        data = await execute(schema, state, document, variables, viewer)
        cpu.append(cpu_now() - c0)
        wall.append(time.perf_counter() - w0)
        objects = objects_in(data)
    return cpu, wall, objects


async def execute(
    schema: RecsysSchema, state: dict[str, Any], query: str, variables: Variables, viewer: Viewer
) -> Any:
    context = request_context(state, None, None, viewer)  # type: ignore[arg-type]
    result = await schema.execute(query, variable_values=variables, context_value=context)
    if result.errors:
        raise RuntimeError(f"{query[:60]}: {result.errors}")
    return result.data


@dataclass
class Measured:
    cpu_ms: float
    wall_ms: float
    objects: int


async def measure(settings: Settings, calls: int) -> dict[str, Any]:
    app = create_app(settings)
    schema = build_schema(settings)  # the app's schema, without throttling
    async with app.router.lifespan_context(app) as lifespan_state:
        state = dict(lifespan_state or {})
        engine = state["reloader"].served.engine
        await asyncio.to_thread(engine.warm_up_search)
        users = [int(u) for u in engine.users.ids]
        movies = [int(m) for m in engine.movies.ids]
        signed = await execute(
            schema, state, "mutation { signUp { user { id } } }", {}, Viewer(None)
        )
        token_user = int(signed["signUp"]["user"]["id"])
        viewer = Viewer(token_user)
        results: dict[str, Measured] = {}
        samples: dict[str, tuple[list[float], list[float], int]] = {}
        for round_ in range(ROUNDS):  # interleaved, so a busy spell hits every probe alike
            for probe in probes(users, movies, token_user):
                n = max(1, (probe.calls or calls) // ROUNDS)
                cpu, wall, objects = await run_probe(schema, state, probe, n, viewer, round_ * n)
                before = samples.get(probe.name, ([], [], 0))
                samples[probe.name] = (before[0] + cpu, before[1] + wall, objects)
        for name, (cpu, wall, objects) in samples.items():
            results[name] = Measured(trimmed_mean(cpu) * 1000, trimmed_mean(wall) * 1000, objects)
            print(
                f"{name:20s} cpu {results[name].cpu_ms:8.3f} ms  "
                f"wall {results[name].wall_ms:8.3f} ms  objects {objects}",
                flush=True,
            )
        unit_ms = (results["unit_movies"].cpu_ms - results["unit_base"].cpu_ms) / 50
        base = results["typename"].cpu_ms
        weights: dict[str, float] = {}
        for probe in probes(users, movies, token_user):
            if probe.field is None:
                continue
            m = results[probe.name]
            if probe.flat:
                extra = m.cpu_ms - base
            elif probe.minus is None:
                extra = m.cpu_ms - base - m.objects * unit_ms
            else:
                other = results[probe.minus]
                extra = m.cpu_ms - other.cpu_ms - (m.objects - other.objects) * unit_ms
            weights[probe.field] = round(extra / probe.per / unit_ms, 1)
        return {
            "unit_ms": round(unit_ms, 5),
            "typename_cpu_ms": round(base, 4),
            "probes": {k: vars(v) for k, v in results.items()},
            "weights": weights,
        }


def priced(model: CostModel, operations: dict[str, str]) -> dict[str, int]:
    return {name: model.estimate(parse(text)) for name, text in operations.items()}


WEB_VARIABLES: dict[str, Variables] = {"ForYou": {"first": 12}}
"""The variables the page sends where they size a list (``FOR_YOU_COUNT`` in ForYou.tsx)."""

MIX: dict[str, tuple[Callable[[], dict[str, str]] | None, str, Variables]] = {
    "user page": (example_operations, "user_page", {"userId": 1}),
    "movie page": (example_operations, "movie_page", {"movieId": 1}),
    "browse": (example_operations, "browse", {}),
    "search": (example_operations, "search", {"query": "a dog finds its way home"}),
    "recommendations x 20 with similar(6)": (
        None,
        "{ recommendations(userId: 7, first: 20)"
        " { movie { title similar(first: 6) { movie { title } } } } }",
        {},
    ),
    "similar(100) with similar(10)": (
        None,
        "{ similarMovies(movieId: 260, first: 100)"
        " { movie { similar(first: 10) { movie { title year } } } } }",
        {},
    ),
}


def same_variables(variables: Variables, _: int) -> Variables:
    """The same ``variables`` for every run."""
    return variables


def price_operations(model: CostModel) -> dict[str, dict[str, int]]:
    """The estimated cost of every example query and every query the web page sends."""
    examples = {name: model.estimate(parse(text)) for name, text in example_operations().items()}
    web = {
        name: model.estimate(parse(text), None, WEB_VARIABLES.get(name))
        for name, text in web_operations().items()
    }
    return {"examples": examples, "web": web}


async def cpu_per_unit(settings: Settings, calls: int) -> dict[str, dict[str, float]]:
    """Measured CPU against estimated cost for a mix of real queries (each over ``calls`` runs,
    the first answers warm the caches)."""
    app = create_app(settings)
    schema = build_schema(settings)
    model = CostModel(schema._schema)
    out: dict[str, dict[str, float]] = {}
    async with app.router.lifespan_context(app) as lifespan_state:
        state = dict(lifespan_state or {})
        await asyncio.to_thread(state["reloader"].served.engine.warm_up_search)
        for label, (source, key, variables) in MIX.items():
            query = source()[key] if source is not None else key
            cost = model.estimate(parse(query), None, variables)
            probe = Probe(label, query, functools.partial(same_variables, variables))
            samples, _, _ = await run_probe(schema, state, probe, calls, Viewer(None))
            cpu = trimmed_mean(samples)
            out[label] = {
                "cost": cost,
                "cpu_ms": round(cpu * 1000, 3),
                "us_per_unit": round(cpu * 1e6 / cost, 2),
            }
            print(f"{label:40s} cost {cost:6d}  cpu {cpu * 1000:8.3f} ms", flush=True)
    return out


async def loop_stalls(settings: Settings, runs: int) -> dict[str, dict[str, float]]:
    """For each costly candidate of ``bench.query_cost_load``: its cost, and over ``runs``
    executions the longest the event loop went without a turn (a ticker yielding to it meets
    every turn) and the time the execution took."""
    from bench.query_cost_load import candidates  # the same shapes as the load benchmark

    app = create_app(settings)
    schema = build_schema(settings)
    model = CostModel(schema._schema)
    out: dict[str, dict[str, float]] = {}
    async with app.router.lifespan_context(app) as lifespan_state:
        state = dict(lifespan_state or {})
        engine = state["reloader"].served.engine
        await asyncio.to_thread(engine.warm_up_search)
        movies = [int(m) for m in engine.movies.ids]
        texts = [f"{QUERIES[i % len(QUERIES)]} {i}" for i in range(5000)]
        for candidate in candidates(movies, texts, model, Settings().max_query_cost):
            longest, elapsed = 0.0, []
            for i in range(runs):
                variables = candidate.variables(i)
                stall, took = await _longest_stall(schema, state, candidate.query, variables)
                longest = max(longest, stall)
                elapsed.append(took)
            cost = model.estimate(parse(candidate.query), None, candidate.variables(0))
            out[candidate.name] = {
                "cost": cost,
                "longest_stall_ms": round(longest * 1000, 2),
                "median_execution_ms": round(statistics.median(elapsed) * 1000, 1),
            }
            print(f"{candidate.name:40s} longest stall {longest * 1000:6.2f} ms", flush=True)
    return out


async def _longest_stall(
    schema: RecsysSchema, state: dict[str, Any], query: str, variables: Variables
) -> tuple[float, float]:
    gaps: list[float] = []
    running = True

    async def ticker() -> None:
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await execute(schema, state, query, variables, Viewer(None))
    took = time.perf_counter() - started
    running = False
    await task
    return max(gaps, default=0.0), took


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--calls", type=int, default=200, help="runs per probe")
    parser.add_argument("--artifacts-dir", type=Path, default=REPO_ROOT / "artifacts")
    parser.add_argument("--database", type=Path, default=REPO_ROOT / "data" / "recsys.db")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.artifacts_dir / "current").exists() or not args.database.exists():
        print(
            "run `make serve` (or `make train db`) first: no artifacts or database", file=sys.stderr
        )
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "recsys.db"
        shutil.copy(args.database, copy)  # rateMovie and signUp write to the copy
        settings = Settings(
            artifacts_dir=args.artifacts_dir,
            database_url=f"sqlite+aiosqlite:///{copy}",
            recommendation_memo_size=0,
            preload_search_model=False,
            max_query_cost=10**9,  # measured here, not refused
        )
        measured = asyncio.run(measure(settings, args.calls))
        mix = asyncio.run(cpu_per_unit(settings, max(20, args.calls // 4)))
        stalls = asyncio.run(loop_stalls(settings, 10))
    model = CostModel(build_schema()._schema)
    payload = {
        "benchmark": "query_cost",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.query_cost " + shlex.join(argv or sys.argv[1:]),
        "machine": machine_info(),
        **measured,
        "priced": price_operations(model),
        "cpu_per_unit": mix,
        "loop_stalls": stalls,
    }
    write_json_atomic(args.out, payload)
    print(f"unit {measured['unit_ms'] * 1000:.1f} us; weights: {measured['weights']}")
    print(f"priced: {payload['priced']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
