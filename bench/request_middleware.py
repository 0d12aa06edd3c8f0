"""What the request-id and access-log middleware cost per request, in-process.

Run from the repository root::

    python -m bench.request_middleware [--requests 20000] [--rounds 5]

Calls an ASGI app that answers 200 at once, directly (no server, no network), through five
stacks: bare; ``RequestId``; ``RequestId`` + ``AccessLog`` with JSON lines (python-json-logger,
the production format); the same with text lines (the development format); and ``RequestId``
+ ``RequestMetrics`` (Prometheus; run with ``PROMETHEUS_MULTIPROC_DIR`` set to an empty
directory to measure the file-backed values ``recsys-gql serve`` uses). Both log stacks write
to ``/dev/null`` through a ``StreamHandler`` with the request-id filter, as ``recsys-gql
serve`` configures them. Rounds alternate between the stacks. The figure is the median over
rounds of the mean microseconds per request, and the overhead is that median minus the bare
stack's median. A request in ``bench.serve`` takes about 0.5-1 ms of server CPU, which is the
scale to compare these figures against.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import os
import shlex
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.common import machine_info, write_json_atomic
from recsys_gql.logs import logging_config
from recsys_gql.middleware.access_log import AccessLog
from recsys_gql.middleware.metrics import RequestMetrics
from recsys_gql.middleware.request_id import RequestId, RequestIdFilter
from recsys_gql.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "request_middleware.json"


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def logger(name: str, settings: Settings) -> logging.Logger:
    """A logger writing to /dev/null with the formatter and filter ``serve`` configures."""
    config = logging_config(settings)
    formatter = logging.config.DictConfigurator(config).configure_formatter(
        dict(config["formatters"]["default"])
    )
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the run)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    log = logging.getLogger(f"bench.access.{name}")
    log.handlers = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


async def drive(app: ASGIApp, requests: int) -> float:
    """Mean seconds per request of ``requests`` sequential calls."""
    headers = [(b"host", b"bench"), (b"content-type", b"application/json")]

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_: Message) -> None:
        return None

    started = time.perf_counter()
    for _ in range(requests):
        scope: dict[str, Any] = {
            "type": "http",
            "method": "POST",
            "path": "/graphql",
            "headers": headers,
            "query_string": b"",
            "state": {},
        }
        await app(scope, receive, send)
    return (time.perf_counter() - started) / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    stacks: dict[str, ASGIApp] = {
        "bare": answer,
        "request_id": RequestId(answer),
        "request_id+access_log_json": RequestId(
            AccessLog(answer, logger("json", Settings(log_format="json")))
        ),
        "request_id+access_log_text": RequestId(
            AccessLog(answer, logger("text", Settings(log_format="text")))
        ),
        "request_id+metrics": RequestId(RequestMetrics(answer)),
    }
    samples: dict[str, list[float]] = {name: [] for name in stacks}
    for _ in range(args.rounds):
        for name, app in stacks.items():
            samples[name].append(asyncio.run(drive(app, args.requests)) * 1e6)
    medians = {name: round(statistics.median(values), 2) for name, values in samples.items()}
    payload = {
        "command": shlex.join(["python", "-m", "bench.request_middleware", *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average": list(os.getloadavg()),
        "prometheus_multiproc_dir_set": bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")),
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "machine": machine_info(),
        "us_per_request_median": medians,
        "us_per_request_rounds": {k: [round(v, 2) for v in vs] for k, vs in samples.items()},
        "overhead_us": {name: round(medians[name] - medians["bare"], 2) for name in stacks},
    }
    write_json_atomic(args.out, payload)
    for name in stacks:
        print(f"{name:28s} {medians[name]:7.2f} µs/request  (+{payload['overhead_us'][name]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
