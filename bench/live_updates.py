"""How long a live subscriber waits for its new list after a rating.

Two ``recsys-gql serve`` processes share a fresh PostgreSQL database and Redis (the live-update
bus rides on the rate-limit storage). A signed-up user subscribes to
``recommendationsUpdated(first: 10)`` over a WebSocket on replica B, then rates its current top
recommendation ``--ratings`` times through replica A over HTTP; each delay runs from sending
the mutation until B's new list has arrived (the write, the publish, B's recomputation and the
push). The same is measured with subscriber and writer on one replica, for comparison.

    python -m bench.live_updates [--ratings 40]

Needs ``artifacts/current`` and ``data/raw/ml-latest-small`` (``make train``), PostgreSQL on
127.0.0.1:5432 and Redis on 127.0.0.1:6379. Writes ``bench/results/live_updates.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from bench.common import JsonDict
from bench.serve_harness import (
    REDIS_URL,
    artifacts_root,
    code_version,
    data_folder,
    load_average,
    missing_inputs,
    running_server,
    temporary_postgres_database,
)

RESULTS = Path(__file__).resolve().parent / "results" / "live_updates.json"
LIVE = "subscription { recommendationsUpdated(first: 10) { movie { id } } }"
RATE = """mutation ($u: Int!, $m: Int!) { rateMovie(input: {userId: $u, movieId: $m, rating: 4.5})
  { __typename } }"""


async def _next_list(ws: Any) -> list[int]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if message["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        assert message["type"] == "next", message
        return [r["movie"]["id"] for r in message["payload"]["data"]["recommendationsUpdated"]]


async def delays(writer: str, subscriber: str, ratings: int) -> list[float]:
    """Seconds from each rating sent to ``writer`` until ``subscriber`` pushed the new list."""
    async with httpx.AsyncClient(timeout=30) as http:
        signed = (
            await http.post(
                f"{writer}/graphql", json={"query": "mutation { signUp { token user { id } } }"}
            )
        ).json()["data"]["signUp"]
        user, token = signed["user"]["id"], signed["token"]
        url = subscriber.replace("http://", "ws://") + "/graphql"
        found: list[float] = []
        async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            await ws.send(
                json.dumps(
                    {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
                )
            )
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": LIVE}}))
            current = await _next_list(ws)
            for _ in range(ratings):
                started = time.perf_counter()
                saved = await http.post(
                    f"{writer}/graphql",
                    json={"query": RATE, "variables": {"u": user, "m": current[0]}},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert saved.json()["data"]["rateMovie"]["__typename"] == "RatingSaved"
                updated = await _next_list(ws)
                found.append(time.perf_counter() - started)
                assert current[0] not in updated
                current = updated
    return found


def summary(values: list[float]) -> JsonDict:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", type=int, default=40)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    artifacts, data_dir = artifacts_root(), data_folder()
    problems = missing_inputs(artifacts, data_dir)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    prefix = f"bench-live-{uuid.uuid4().hex[:8]}"
    load_before = load_average()
    with temporary_postgres_database(data_dir) as (database_url, _, _), ExitStack() as stack:
        env = {
            "RECSYS_GQL_DATABASE_URL": database_url,
            "RECSYS_GQL_ARTIFACTS_DIR": str(artifacts),
            "RECSYS_GQL_RATE_LIMIT_STORAGE": REDIS_URL,
            "RECSYS_GQL_RATE_LIMIT_KEY_PREFIX": prefix,
            "RECSYS_GQL_RATE_LIMIT_READS": "100000/minute",
            "RECSYS_GQL_RATE_LIMIT_WRITES": "100000/minute",
            "RECSYS_GQL_PRELOAD_SEARCH_MODEL": "false",
            "RECSYS_GQL_ACCESS_LOG": "false",
        }
        # the harness reads this from our own environment to know what "started" means
        os.environ["RECSYS_GQL_PRELOAD_SEARCH_MODEL"] = "false"
        logs = Path(stack.enter_context(_tempdir()))
        a = stack.enter_context(running_server(env, logs / "a.log", 1))
        b = stack.enter_context(running_server(env, logs / "b.log", 1))
        across = asyncio.run(delays(a.url, b.url, args.ratings))
        same = asyncio.run(delays(b.url, b.url, args.ratings))
    result: JsonDict = {
        "benchmark": "live_updates",
        "command": "python -m bench.live_updates " + " ".join(argv or sys.argv[1:]),
        "across_replicas": summary(across),
        "same_replica": summary(same),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "code": code_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


def _tempdir() -> Any:
    import tempfile

    return tempfile.TemporaryDirectory(prefix="bench-live-")


if __name__ == "__main__":
    raise SystemExit(main())
