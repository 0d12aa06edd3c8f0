"""``bench.serve_ceiling``: the bounds a run's own figures set the engine-bound targets, and
the engine timed in a child process."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bench.serve import machine_bounds
from bench.serve_ceiling import ceilings, describe, measure_engine
from bench.serve_workloads import Operation, Targets, uniform_users
from tests.conftest import RealRun

ENGINE = {"cpu_ms_per_call": 2.0, "wall_ms_per_call": 2.1}


def _results(typename_cpu: float = 100.0) -> dict[str, dict[str, float]]:
    return {
        "typename": {"req_per_s": 2000.0, "server_cpu_percent": typename_cpu},
        "mixed": {"req_per_s": 300.0, "server_cpu_percent": 116.0,
                  "client_cpu_percent": 3.0, "other_cpu_percent": 2.0},
    }  # fmt: skip


def test_the_uncached_bound_is_the_engine_plus_the_request_path_floor() -> None:
    bounds = ceilings(_results(), ENGINE, cores=2, share_of_typename=0.5, two_worker_speedup=1.7)
    uncached = bounds["uncached"]
    # __typename: 100% of a core over 2,000 req/s is 0.5 ms a request; with the engine, 2.5 ms
    assert uncached["request_path_floor_cpu_ms"] == 0.5
    assert uncached["least_cpu_ms_per_request"] == 2.5
    assert uncached["needed_req_per_s"] == 1000.0
    assert (uncached["one_core_bound_req_per_s"], uncached["machine_bound_req_per_s"]) == (400, 800)
    assert not uncached["reachable_on_one_core"]
    assert not uncached["reachable_on_this_machine"]
    assert "least_mean_latency_ms_on_one_core" not in uncached  # no connections given
    # 32 connections served at 400 req/s wait 80 ms on average
    loaded = ceilings(_results(), ENGINE, 2, 0.5, 1.7, connections=32)["uncached"]
    assert loaded["least_mean_latency_ms_on_one_core"] == 80.0
    # a cheaper floor and more cores make the same target reachable
    cheap = ceilings(_results(20.0), ENGINE, cores=4, share_of_typename=0.5, two_worker_speedup=1.7)
    assert cheap["uncached"]["reachable_on_this_machine"]
    assert json.dumps(bounds)


def test_two_workers_cannot_gain_more_than_the_cpu_one_worker_leaves() -> None:
    two = ceilings(_results(), ENGINE, 2, 0.5, 1.7)["mixed_two_workers"]
    assert two["cpu_percent_left_for_servers"] == 195.0  # 200 less wrk's 3 and the others' 2
    assert two["speedup_bound"] == pytest.approx(195.0 / 116.0, abs=1e-3)
    assert not two["reachable_on_this_machine"]
    assert ceilings(_results(), ENGINE, 4, 0.5, 1.7)["mixed_two_workers"][
        "reachable_on_this_machine"
    ]


def test_a_bound_is_given_only_where_the_run_has_its_operation_and_target() -> None:
    no_targets = ceilings(_results(), ENGINE, 2, None, None)
    assert "uncached" not in no_targets
    assert "mixed_two_workers" not in no_targets
    without_typename = {"mixed": _results()["mixed"]}
    assert "uncached" not in ceilings(without_typename, ENGINE, 2, 0.5, 1.7)
    lines = describe(ceilings(_results(), ENGINE, 2, 0.5, 1.7))
    assert lines[0] == "engine alone: 2.0 ms CPU per default call"
    assert "on 2 cores" in lines[1]
    assert "about 1.681x (needs 1.7x)" in lines[2]


def test_the_engine_is_timed_on_the_default_request_in_a_child_process(real_run: RealRun) -> None:
    timed = measure_engine(real_run.current, calls=30, warmup=2)
    assert timed["calls"] == 30
    assert 1 < timed["distinct_users"] <= 30
    assert timed["cpu_ms_per_call"] > 0
    assert timed["wall_ms_per_call"] > 0
    assert timed["artifacts"] == str(real_run.current)


def test_users_are_drawn_uniformly_from_all_users_and_the_seed_repeats_the_draw() -> None:
    ids = list(range(1001, 1611))  # not the default ids: the ones given are the ones drawn
    drawn = uniform_users(6100, seed=1, ids=ids)
    assert drawn == uniform_users(6100, seed=1, ids=ids) != uniform_users(6100, seed=2, ids=ids)
    assert set(drawn) <= set(ids)
    counts = Counter(drawn)
    assert len(counts) > 590  # nearly every user, not a few repeated ones
    assert max(counts.values()) < 40  # no user drawn far above the mean of 10


def test_a_broken_artifact_folder_is_reported_with_the_childs_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="engine timing failed"):
        measure_engine(tmp_path / "missing", calls=1, warmup=0)


def test_the_load_figures_survive_an_engine_that_cannot_be_timed(tmp_path: Path) -> None:
    uncached = Operation("recommendationsUncached", "x", targets=Targets(share_of_typename=0.5))
    results = {"typename": _results()["typename"], "recommendationsUncached": {"req_per_s": 1.0}}
    failed = machine_bounds([uncached], results, tmp_path, connections=32)
    assert failed is not None
    assert "engine timing failed" in failed["error"]
    # a run without the engine-bound operations times nothing
    assert machine_bounds([Operation("typename", "x")], results, tmp_path, 32) is None
