"""The parts of ``bench.serve``: the workloads it sends, the Lua it gives wrk, the counters it
reads from ``/stats``, the write check it runs on the database, and its targets."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bench.serve import settings_environment
from bench.serve_harness import check_writes, stats_delta
from bench.serve_load import lua_script
from bench.serve_report import evaluate_targets
from bench.serve_workloads import (
    DISTINCT_BODIES,
    KNOWN_USERS,
    MIXED_SHARES,
    WRITE_MARKER,
    BenchUser,
    Operation,
    Targets,
    mixed_bodies,
    recommendation_bodies,
    search_texts,
    uniform_users,
)
from recsys_gql.recsys.diversity import DEFAULT_DIVERSITY
from tests.conftest import write_tiny_movielens


def test_users_are_drawn_from_all_users_and_uncached_bodies_never_repeat() -> None:
    users = uniform_users(20_000, seed=1)
    assert set(users) == set(KNOWN_USERS)  # every user appears, none outside
    assert max(users.count(u) for u in KNOWN_USERS) < 3 * 20_000 / len(KNOWN_USERS)
    uncached = recommendation_bodies(19, uncached=True)
    assert len(set(uncached)) == len(uncached) == DISTINCT_BODIES
    # the default request's work: no alpha (that would take the linear blend, not the
    # ranking stage), a diversity a hair from the default
    variables = [json.loads(b)["variables"] for b in uncached]
    assert all(set(v) == {"userId", "diversity"} for v in variables)
    assert all(abs(v["diversity"] - DEFAULT_DIVERSITY) < 0.05 for v in variables)
    warm = recommendation_bodies(91, uncached=True)
    assert not set(uncached) & set(warm)
    cached = recommendation_bodies(19, uncached=False)
    assert len(set(cached)) <= len(KNOWN_USERS)  # the memo can answer these


def test_search_texts_are_distinct_windows_of_the_overviews(tmp_path: Path) -> None:
    data = write_tiny_movielens(tmp_path / "tiny")
    texts = search_texts(data, 60, seed=3)
    assert len(set(texts)) == 60
    plots = (data / "overviews.csv").read_text(encoding="utf-8")
    assert all(4 <= len(t.split()) <= 16 and t in plots for t in texts)
    assert texts == search_texts(data, 60, seed=3)


def test_the_mixed_workload_keeps_its_shares() -> None:
    bodies, write_every = mixed_bodies(list(range(1, 101)), [f"q{i}" for i in range(3000)], 19)
    assert write_every == 100 // MIXED_SHARES["rate"]
    kinds = {
        "recommendations": sum('"recommendations(' in b or "recommendations(" in b for b in bodies),
        "movie": sum("query Movie(" in b for b in bodies),
        "similar": sum("similarMovies(" in b for b in bodies),
        "search": sum("searchMovies(" in b for b in bodies),
    }
    reads = sum(kinds.values())
    assert reads == len(bodies)
    for kind, count in kinds.items():
        assert count / reads == pytest.approx(MIXED_SHARES[kind] / 98, abs=0.002)
    assert bodies[:50] != sorted(bodies[:50])  # interleaved, not in blocks


def test_the_wrk_script_of_a_mixed_run_writes_every_nth_request(tmp_path: Path) -> None:
    op = Operation("mixed", '{"data":{"', ("{}",), mode="mixed", rate_movies=(1, 2), write_every=50)
    users = [BenchUser(7, "rgq_a"), BenchUser(8, "rgq_b")]
    script = lua_script(op, users, 1, tmp_path / "r.json", tmp_path / "a.txt")
    assert 'local mode = "mixed"' in script
    assert "local write_every = 50" in script
    assert WRITE_MARKER in script
    assert "rgq_a" in script
    assert "@MODE@" not in script
    assert "@WRITE_EVERY@" not in script


def test_stats_deltas_give_the_runs_own_hit_ratios() -> None:
    def stats(hits: int, misses: int, cache_hits: int, batches: int) -> dict[str, object]:
        search = dict.fromkeys(("shared", "batched_queries"), 0)
        search.update(cache_hits=cache_hits, cache_misses=10, batches=batches)
        search["batched_queries"] = 4 * batches
        return {"recommendation_memo": {"hits": hits, "misses": misses}, "search": search}

    moved = stats_delta(stats(100, 50, 0, 0), stats(101, 149, 5, 3))
    assert moved is not None
    assert moved["recommendation_memo"] == {"hits": 1, "misses": 99, "hit_ratio": 0.01}
    assert moved["search"]["mean_batch"] == 4.0
    assert moved["search"]["cache_hit_ratio"] is None or moved["search"]["cache_hits"] == 5
    assert stats_delta(None, stats(1, 1, 1, 1)) is None


def _ratings_db(path: Path, rows: list[tuple[int, int, float]]) -> str:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE ratings (user_id INT, movie_id INT, rating REAL)")
    connection.executemany("INSERT INTO ratings VALUES (?, ?, ?)", rows)
    connection.commit()
    connection.close()
    return f"sqlite+aiosqlite:///{path}"


def test_the_write_check_finds_every_acknowledged_write_or_says_what_is_missing(
    tmp_path: Path,
) -> None:
    loaded = [(1, 1, 4.0), (2, 1, 3.0)]
    url = _ratings_db(tmp_path / "ok.db", [*loaded, (900, 5, 2.5), (900, 6, 1.0)])
    good = check_writes(url, 2, [(900, 5, 2.5), (900, 6, 1.0)], [900])
    assert good["ok"]
    assert good["missing"] == 0
    url = _ratings_db(tmp_path / "bad.db", [*loaded, (900, 5, 2.0)])
    bad = check_writes(url, 2, [(900, 5, 2.5), (900, 6, 1.0)], [900])
    assert not bad["ok"]
    assert (bad["missing"], bad["rating_mismatches"]) == (1, 1)


def test_targets_are_judged_against_the_same_runs_ceiling() -> None:
    ops = [
        Operation("typename", "x"),
        Operation("recs", "x", targets=Targets(p99_ms=100.0, share_of_typename=0.5)),
        Operation("mixed", "x", mode="mixed", targets=Targets(zero_errors=True,
                                                              two_worker_speedup=1.7)),
    ]  # fmt: skip
    results = {
        "typename": {"req_per_s": 800.0, "p99_ms": 40.0, "errors": {"total": 0}},
        "recs": {"req_per_s": 360.0, "p99_ms": 90.0, "errors": {"total": 0}},
        "mixed": {"req_per_s": 300.0, "p99_ms": 120.0, "errors": {"total": 0}},
    }
    two = {"mixed": {"req_per_s": 540.0}}
    judged = {t["name"]: t for t in evaluate_targets(ops, results, {"ok": False}, two)}
    assert judged["recs req/s >= 50% of __typename"]["value"] == 0.45
    assert not judged["recs req/s >= 50% of __typename"]["met"]
    assert judged["recs p99 <= 100 ms"]["met"]
    failed = judged["mixed: zero errors, every acknowledged write stored"]
    assert (failed["value"], failed["met"]) == (1, False)  # the write check failed
    assert judged["mixed: two workers >= 1.7x one"]["value"] == 1.8
    assert json.dumps(judged)  # JSON as written


def test_each_round_starts_from_its_own_share_of_the_bodies(tmp_path: Path) -> None:
    op = Operation("searchMovies", "x", tuple(f"b{i}" for i in range(30_000)))
    starts = [op.for_round(i, 3).start for i in range(3)]
    assert starts == [0, 10_000, 20_000]
    script = lua_script(op.for_round(2, 3), [], 1, tmp_path / "r.json", tmp_path / "a.txt")
    assert "offset = (20000 + tid * 7919)" in script


def test_the_record_names_the_servers_settings_and_hides_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECSYS_GQL_ENGINE_THREADS", "2")
    monkeypatch.setenv("RECSYS_GQL_TOKEN_SECRET", "do-not-print")
    monkeypatch.setenv("RECSYS_GQL_DATABASE_URL", "postgresql://user:pw@host/db")
    monkeypatch.setenv("OTHER_SETTING", "1")
    recorded = settings_environment()
    assert recorded["RECSYS_GQL_ENGINE_THREADS"] == "2"
    assert recorded["RECSYS_GQL_TOKEN_SECRET"] == "(set)"
    assert recorded["RECSYS_GQL_DATABASE_URL"] == "(set)"
    assert "OTHER_SETTING" not in recorded
    assert "do-not-print" not in json.dumps(recorded)
