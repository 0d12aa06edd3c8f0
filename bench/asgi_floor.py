"""What the machine and the harness allow, whatever the app: ``bench.serve``'s load against an
ASGI app that does nothing but stay busy for a fixed time per request.

Run from the repository root::

    python -m bench.asgi_floor [--busy-ms 0.7] [--duration 10] [--connections 32] [--repeat 3]
                               [--out bench/results/asgi_floor.json]

The app (:func:`app`) reads the body, spins for ``--busy-ms`` of wall time and answers a fixed
GraphQL-shaped JSON body. It is served by ``uvicorn`` with the options ``recsys-gql serve``
uses (one worker, uvloop, httptools, an access log) on a free loopback port, and driven by
``wrk`` with one thread and ``--connections`` connections, as ``bench.serve`` drives its
operations (here plain GETs: the app ignores the method). A perfectly steady machine would
answer every request after about ``connections x busy`` ms, so p99 would equal p50; what this
measures beyond that is the machine's (and the load generator's) own contribution to the
tail. Needs Debian's ``wrk``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import JsonDict, machine_info, write_json_atomic
from bench.serve import free_port, load_average

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "asgi_floor.json"
BODY = b'{"data":{"__typename":"Query"}}'
PERCENTILE_LINE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the request, stay busy for ``BENCH_FLOOR_BUSY_MS`` ms, answer a fixed body."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    busy_s = float(os.environ.get("BENCH_FLOOR_BUSY_MS", "0.7")) / 1000
    start = time.perf_counter()
    while time.perf_counter() - start < busy_s:
        pass
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def parse_wrk(text: str) -> JsonDict:
    """Requests per second and the latency percentiles from ``wrk --latency`` output."""
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    latency = {
        f"p{pct}_ms": round(float(value) * units[unit], 3)
        for pct, value, unit in re.findall(
            r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M
        )
    }
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    errors = re.search(r"Socket errors: (.*)$", text, re.M)
    if rate is None or len(latency) != 4:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    return {
        "req_per_s": float(rate.group(1)),
        **latency,
        "socket_errors": errors.group(1) if errors else None,
    }


def wait_for_port(port: int, timeout_s: float) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port} after {timeout_s} s") from None
            time.sleep(0.1)


def measure(args: argparse.Namespace, wrk: str) -> list[JsonDict]:
    """``--repeat`` runs of ``wrk`` against one uvicorn serving :func:`app`."""
    port = free_port()
    env = {**os.environ, "BENCH_FLOOR_BUSY_MS": str(args.busy_ms)}
    command = [
        sys.executable, "-m", "uvicorn", "bench.asgi_floor:app", "--host", "127.0.0.1",
        "--port", str(port), "--loop", "uvloop", "--http", "httptools",
    ]  # fmt: skip
    # the access log goes to a file, as recsys-gql serve's does
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
        try:
            return _runs(args, wrk, port)
        finally:
            server.terminate()
            server.wait(timeout=30)


def _runs(args: argparse.Namespace, wrk: str, port: int) -> list[JsonDict]:
    wait_for_port(port, timeout_s=30)
    url = f"http://127.0.0.1:{port}/graphql"
    warm_up = [wrk, "-t1", f"-c{args.connections}", "-d2s", url]
    subprocess.run(warm_up, check=True, capture_output=True)
    runs = []
    for _ in range(args.repeat):
        command = [wrk, "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency", url]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        runs.append(parse_wrk(done.stdout))
        print(f"floor run: {runs[-1]}")
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print and write the floor; 2 when ``wrk`` is missing."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--busy-ms", type=float, default=0.7, help="busy time per request")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="recorded runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print("bench.asgi_floor: needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    load_at_start = load_average()
    runs = measure(args, wrk)
    steady_ms = args.connections * args.busy_ms
    payload: JsonDict = {
        "benchmark": "asgi_floor",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "-m", "bench.asgi_floor", *(argv or sys.argv[1:])]),
        "machine": {**machine_info(), "load_average_at_start": load_at_start},
        "settings": {
            "busy_ms": args.busy_ms,
            "duration_s": args.duration,
            "connections": args.connections,
            "repeat": args.repeat,
        },
        "steady_machine_latency_ms": steady_ms,
        "runs": runs,
    }
    write_json_atomic(args.out, payload)
    print(f"a steady machine: every request after ~{steady_ms:.1f} ms; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
