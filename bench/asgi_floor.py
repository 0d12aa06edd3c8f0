"""What the serving stack allows, whatever the app: ``bench.serve``'s load against an ASGI app
that does nothing but stay busy for a fixed time per request, on each event loop.

Run from the repository root::

    python -m bench.asgi_floor [--busy-ms 0.7] [--duration 10] [--connections 32] [--repeat 3]
                               [--loops asyncio uvloop] [--out bench/results/asgi_floor.json]

The app (:func:`app`) reads the body, spins for ``--busy-ms`` of wall time and answers a fixed
GraphQL-shaped JSON body. One ``uvicorn`` per event loop serves it as ``recsys-gql serve``
does (one worker, httptools, an access log; the loop is ``RECSYS_GQL_EVENT_LOOP``), each on a
free loopback port, driven by ``wrk`` with one thread and ``--connections`` connections as
``bench.serve`` drives its operations (here plain GETs: the app ignores the method), in rounds
over the loops. A server that answered its connections in turn would answer every request
after about ``connections x busy`` ms, so p99 would be close to p50: what this measures beyond
that is the tail the loop, the HTTP layer, the machine and the load generator add. It is how
the default loop was chosen: on the 2-core VMs of 2026-11 uvloop's p99.9 was 5-10 times the
standard library loop's, at the same rate. Needs Debian's ``wrk``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

from bench.common import JsonDict, machine_info, write_json_atomic
from bench.serve_harness import free_port, load_average
from recsys_gql.serving import uvicorn_loop
from recsys_gql.settings import EventLoop

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "asgi_floor.json"
BODY = b'{"data":{"__typename":"Query"}}'
LOOPS: tuple[EventLoop, ...] = get_args(EventLoop)
RESULT_MARKER = "floor-result "
REPORT_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'floor-result {"requests": %d, "duration_us": %d, "p50": %d, "p90": %d, "p99": %d, ' ..
    '"p99_9": %d, "max": %d, "socket_errors": {"connect": %d, "read": %d, "write": %d, ' ..
    '"timeout": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.timeout))
end
"""
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
    """Requests per second and the latency percentiles from wrk's output with
    :data:`REPORT_SCRIPT` (the line it prints after ``RESULT_MARKER``)."""
    for line in text.splitlines():
        if line.startswith(RESULT_MARKER):
            raw = json.loads(line.removeprefix(RESULT_MARKER))
            errors = raw.pop("socket_errors")
            return {
                "req_per_s": round(raw.pop("requests") * 1e6 / raw.pop("duration_us"), 2),
                **{f"{key}_ms": round(value / 1000, 3) for key, value in raw.items()},
                "socket_errors": errors if any(errors.values()) else None,
            }
    raise RuntimeError(f"unexpected wrk output:\n{text}")


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


@contextmanager
def floor_server(loop: EventLoop, busy_ms: float) -> Iterator[int]:
    """A uvicorn serving :func:`app` on ``loop``, on a free loopback port, until the block
    exits."""
    port = free_port()
    env = {**os.environ, "BENCH_FLOOR_BUSY_MS": str(busy_ms)}
    command = [
        sys.executable, "-m", "uvicorn", "bench.asgi_floor:app", "--host", "127.0.0.1",
        "--port", str(port), "--loop", uvicorn_loop(loop, workers=1), "--http", "httptools",
    ]  # fmt: skip
    # the access log goes to a file, as recsys-gql serve's does
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
        try:
            wait_for_port(port, timeout_s=30)
            yield port
        finally:
            server.terminate()
            server.wait(timeout=30)


def measure(args: argparse.Namespace, wrk: str) -> dict[EventLoop, list[JsonDict]]:
    """``--repeat`` runs of ``wrk`` against one server per event loop, in rounds over the
    loops (so a slow spell of the machine weighs on each alike)."""
    runs: dict[EventLoop, list[JsonDict]] = {loop: [] for loop in args.loops}
    with tempfile.TemporaryDirectory() as workdir, ExitStack() as servers:
        script = Path(workdir) / "report.lua"
        script.write_text(REPORT_SCRIPT, encoding="utf-8")
        ports = {loop: servers.enter_context(floor_server(loop, args.busy_ms)) for loop in runs}
        for _ in range(args.repeat):
            for loop, port in ports.items():
                url = f"http://127.0.0.1:{port}/graphql"
                load = [wrk, "-t1", f"-c{args.connections}"]
                if not runs[loop]:  # an unrecorded warm-up before a server's first run
                    subprocess.run([*load, "-d2s", url], check=True, capture_output=True)
                command = [*load, f"-d{args.duration}s", f"--script={script}", url]
                done = subprocess.run(command, check=True, capture_output=True, text=True)
                runs[loop].append(parse_wrk(done.stdout))
                print(f"{loop}: {runs[loop][-1]}")
    return runs


def summarise(runs: list[JsonDict]) -> JsonDict:
    """The median of every figure over ``runs`` (the worst ``max``)."""
    keys = [key for key in runs[0] if key.endswith(("_ms", "_per_s")) and key != "max_ms"]
    summary: JsonDict = {key: round(statistics.median(run[key] for run in runs), 3) for key in keys}
    summary["max_ms"] = max(run["max_ms"] for run in runs)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print and write the floor; 2 when ``wrk`` is missing."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--busy-ms", type=float, default=0.7, help="busy time per request")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="recorded runs per loop")
    parser.add_argument(
        "--loops", nargs="+", choices=LOOPS, default=list(LOOPS), help="event loops to compare"
    )
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
            "http": "httptools",
        },
        "steady_machine_latency_ms": steady_ms,
        "loops": {loop: {"median": summarise(r), "runs": r} for loop, r in runs.items()},
    }
    write_json_atomic(args.out, payload)
    print(f"a steady machine: every request after ~{steady_ms:.1f} ms")
    for loop, result in payload["loops"].items():
        print(f"{loop:8} {result['median']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
