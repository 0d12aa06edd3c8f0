"""``bench.serve --repeat``: how an operation's recorded runs become its reported figures."""

from __future__ import annotations

from typing import Any

import pytest

from bench.serve import combine_runs, parse_args


def _run(rate: float, p99: float, errors: int = 0, writes: int | None = None) -> dict[str, Any]:
    return {
        "requests": int(rate * 10),
        "duration_s": 10.0,
        "req_per_s": rate,
        "p50_ms": p99 / 4,
        "p90_ms": p99 / 2,
        "p99_ms": p99,
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
