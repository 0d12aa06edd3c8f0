"""``bench.serve --repeat``: how an operation's recorded runs become its reported figures; and
``bench.asgi_floor``'s app and its reading of ``wrk``."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bench.asgi_floor import app, parse_wrk, summarise
from bench.serve import parse_args
from bench.serve_harness import machine_cpu_seconds
from bench.serve_report import combine_runs


def _run(rate: float, p99: float, errors: int = 0, writes: int | None = None) -> dict[str, Any]:
    return {
        "requests": int(rate * 10),
        "duration_s": 10.0,
        "req_per_s": rate,
        "p50_ms": p99 / 4,
        "p90_ms": p99 / 2,
        "p99_ms": p99,
        "p99_9_ms": p99 * 1.5,
        "max_ms": p99 * 2,
        "mean_ms": p99 / 3,
        "errors": {"non_2xx": errors, "timeouts": 0},
        "warmup_errors": 0,
        "acknowledged_writes": writes,
        "write_users": None if writes is None else 32,
        "server_cpu_percent": 100.0 + rate / 1000,
        "other_cpu_percent": 1.0,
    }


def test_one_run_is_reported_as_it_is() -> None:
    run = _run(500.0, 40.0)
    assert combine_runs([run]) is run


def test_medians_of_rates_and_latencies_sums_of_counts_and_errors() -> None:
    runs = [_run(500.0, 90.0, errors=1), _run(700.0, 30.0), _run(600.0, 50.0, errors=2)]
    combined = combine_runs(runs)
    assert combined["req_per_s"] == 600.0
    assert combined["p99_ms"] == 50.0  # the median p99, whichever run it came from
    assert combined["p50_ms"] == 12.5
    assert combined["max_ms"] == 180.0  # the worst of all
    assert combined["requests"] == 18_000
    assert combined["duration_s"] == 30.0
    assert combined["errors"] == {"non_2xx": 3, "timeouts": 0}  # no run's errors hidden
    assert combined["server_cpu_percent"] == pytest.approx(100.6)  # the median-rate run's
    assert [r["req_per_s"] for r in combined["runs"]] == [500.0, 700.0, 600.0]
    assert [r["errors"] for r in combined["runs"]] == [1, 0, 2]


def test_writes_are_summed_and_reads_have_none() -> None:
    writes = combine_runs([_run(400.0, 60.0, writes=4_000), _run(420.0, 55.0, writes=4_200)])
    assert writes["acknowledged_writes"] == 8_200
    assert writes["req_per_s"] == 410.0  # an even count: the mean of the middle two
    reads = combine_runs([_run(400.0, 60.0), _run(420.0, 55.0)])
    assert reads["acknowledged_writes"] is None


def test_repeat_is_bounded() -> None:
    assert parse_args(["--repeat", "3"]).repeat == 3
    with pytest.raises(SystemExit):
        parse_args(["--repeat", "0"])


WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:40000/graphql
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    31.20ms   12.01ms 180.00ms   97.00%
  10783 requests in 10.00s, 1.53MB read
Requests/sec:   1078.29
Transfer/sec:    156.55KB
floor-result {"requests": 10783, "duration_us": 10000000, "p50": 850, "p90": 31860, \
"p99": 1050000, "p99_9": 1200000, "max": 1300500, "socket_errors": {"connect": 0, \
"read": 0, "write": 0, "timeout": 0}}
"""


def test_the_floor_reads_rate_and_percentiles_in_milliseconds() -> None:
    assert parse_wrk(WRK_OUTPUT) == {
        "req_per_s": 1078.3,
        "p50_ms": 0.85,
        "p90_ms": 31.86,
        "p99_ms": 1050.0,
        "p99_9_ms": 1200.0,
        "max_ms": 1300.5,
        "socket_errors": None,
    }
    timeouts = WRK_OUTPUT.replace('"timeout": 0', '"timeout": 3')
    assert parse_wrk(timeouts)["socket_errors"] == {
        "connect": 0,
        "read": 0,
        "write": 0,
        "timeout": 3,
    }
    with pytest.raises(RuntimeError, match="unexpected wrk output"):
        parse_wrk("connection refused")


def test_the_floor_summary_is_the_median_run_and_the_worst_max() -> None:
    runs = [
        {"req_per_s": 900.0, "p99_ms": 40.0, "max_ms": 45.0, "socket_errors": None},
        {"req_per_s": 1000.0, "p99_ms": 300.0, "max_ms": 400.0, "socket_errors": None},
        {"req_per_s": 1100.0, "p99_ms": 42.0, "max_ms": 50.0, "socket_errors": None},
    ]
    assert summarise(runs) == {"req_per_s": 1000.0, "p99_ms": 42.0, "max_ms": 400.0}


async def test_the_floor_app_answers_after_its_busy_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_FLOOR_BUSY_MS", "20")
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    start = time.perf_counter()
    await app({"type": "http"}, receive, send)
    assert time.perf_counter() - start >= 0.02
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"]) == {"data": {"__typename": "Query"}}


def test_machine_cpu_counts_busy_time_with_steal_and_softirq_inside_it() -> None:
    before = machine_cpu_seconds()
    assert before is not None  # Linux: /proc/stat
    assert before["busy"] >= before["steal"] + before["softirq"] >= 0
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # 0.3 s of this process's own CPU
        pass
    after = machine_cpu_seconds()
    assert after is not None
    assert after["busy"] - before["busy"] >= 0.25  # the clock ticks at 100 Hz
