"""Rating statistics with and without migration 0002's covering index, on the real data.

Run from the repository root::

    python -m bench.rating_stats_index [--backend sqlite|postgres] [--rounds 3] [--calls 2000]

Loads ml-latest-small (``--data-dir``, default ``data/raw/ml-latest-small``) with
``init_database`` into a temporary database (a SQLite file, or a new PostgreSQL database on
``--postgres-admin``), then alternates, ``--rounds`` times: schema at revision 0001 (index on
``ratings (movie_id)``), then at 0002 (``ratings (movie_id, rating)``, which covers the
query). Each time it calls the server's own hot-path read, ``reads.rating_stats(ids)``, for
``--calls`` requests of 10 movies each: "popular" draws them among the 200 most rated movies
(the movies pages and recommendations show most), "any" among every rated movie. Every call
is timed alone; the same id lists are used for both indexes. PostgreSQL is vacuumed after
each migration so the planner may use an index-only scan. Writes
``bench/results/rating_stats_index_<backend>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shlex
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.common import latency_summary, machine_info, write_json_atomic
from recsys_gql.db.hot_reads import HotReads, hot_reads_for
from recsys_gql.db.loader import init_database
from recsys_gql.db.migrate import BASELINE, downgrade, upgrade
from recsys_gql.db.session import BUSY_TIMEOUT_MS, create_db_engine

REPO_ROOT = Path(__file__).resolve().parents[1]
MOVIES_PER_CALL = 10


async def _id_lists(engine: AsyncEngine, calls: int, seed: int) -> dict[str, list[list[int]]]:
    async with engine.connect() as connection:
        ranked = (
            await connection.execute(
                text("SELECT movie_id FROM ratings GROUP BY movie_id ORDER BY COUNT(*) DESC")
            )
        ).scalars()
        movies = [int(movie) for movie in ranked]
    rng = random.Random(seed)
    pools = {"popular": movies[:200], "any": movies}
    return {
        name: [rng.sample(pool, MOVIES_PER_CALL) for _ in range(calls)]
        for name, pool in pools.items()
    }


async def _time(reads: HotReads, id_lists: list[list[int]]) -> list[float]:
    for ids in id_lists[:50]:  # warm the page cache and the statement cache
        await reads.rating_stats(ids)
    seconds = []
    for ids in id_lists:
        started = time.perf_counter()
        await reads.rating_stats(ids)
        seconds.append(time.perf_counter() - started)
    return seconds


async def _at_revision(engine: AsyncEngine, revision: str) -> None:
    if revision == BASELINE:
        await downgrade(engine, BASELINE)
    else:
        await upgrade(engine, revision)
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE ratings"))


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    engine = create_db_engine(url)
    try:
        loaded = await init_database(engine, args.data_dir)
        id_lists = await _id_lists(engine, args.calls, args.seed)
        samples: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for revision, label in ((BASELINE, "movie_id"), ("0002", "movie_id_rating")):
                await _at_revision(engine, revision)
                reads = hot_reads_for(engine, BUSY_TIMEOUT_MS)
                try:
                    for name, lists in id_lists.items():
                        key = f"{name}/{label}"
                        samples.setdefault(key, []).extend(await _time(reads, lists))
                finally:
                    reads.close()
        summaries = {key: latency_summary(values) for key, values in samples.items()}
        ratios = {
            name: round(
                summaries[f"{name}/movie_id"]["p50_ms"]
                / summaries[f"{name}/movie_id_rating"]["p50_ms"],
                2,
            )
            for name in id_lists
        }
        return {"ratings": loaded.ratings, "latency": summaries, "p50_speedup": ratios}
    finally:
        await engine.dispose()


async def _postgres_database(admin_url: str, name: str, *, drop: bool = False) -> None:
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            if drop:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--data-dir", type=Path, default=Path("data/raw/ml-latest-small"))
    parser.add_argument(
        "--postgres-admin", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    out = args.out or REPO_ROOT / "bench" / "results" / f"rating_stats_index_{args.backend}.json"
    with tempfile.TemporaryDirectory() as folder:
        if args.backend == "sqlite":
            result = asyncio.run(run(args, f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"))
        else:
            name = f"recsys_bench_{uuid.uuid4().hex[:8]}"
            asyncio.run(_postgres_database(args.postgres_admin, name))
            try:
                url = args.postgres_admin.rsplit("/", 1)[0] + f"/{name}"
                result = asyncio.run(run(args, url))
            finally:
                asyncio.run(_postgres_database(args.postgres_admin, name, drop=True))
    payload = {
        "command": shlex.join(["python", "-m", "bench.rating_stats_index", *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": args.backend,
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "movies_per_call": MOVIES_PER_CALL,
        "machine": machine_info(),
        **result,
    }
    write_json_atomic(out, payload)
    for key, summary in result["latency"].items():
        print(f"{key:28s} p50 {summary['p50_ms']:.3f} ms  p99 {summary['p99_ms']:.3f} ms")
    print(f"p50 speed-up with the covering index: {result['p50_speedup']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
