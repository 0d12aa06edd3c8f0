"""Tests for training.tmdb: TMDB overview enrichment against a fake TMDB (no network).

Waiting is faked: a ``FakeClock`` records every ``sleep`` and advances its own time instead of
waiting. The ``limits`` moving window reads ``time.time()`` inside ``limits.storage.memory``, so
the ``clock`` fixture points that module (and training.tmdb) at the fake clock too; otherwise a
fake ``sleep`` could never free the window. ``monkeypatch.setattr`` fails loudly if a future
``limits`` moves that import.
"""

from __future__ import annotations

import json
import logging
import math
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import limits.storage.memory as limits_memory
import pandas as pd
import pytest

from training import tmdb
from training.tmdb import EnrichStats, TmdbError, enrich_overviews

API_KEY = "k3y-9f8e7d6c5b4a"
BASE_URL = "https://tmdb.test/3"

Reply = httpx.Response | Exception
Script = Callable[[httpx.Request], Reply]


class FakeClock:
    """Deterministic time: ``sleep`` records the delay and advances ``now`` by it."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)


class FakeTmdb:
    """A fake ``GET /movie/{id}`` endpoint that records every request with its fake time.

    ``overviews`` are the movies it knows (others get 404); ``scripts`` give, per id, replies
    returned in order before falling back to the normal answer; ``always`` overrides an id for
    every request.
    """

    def __init__(
        self,
        clock: FakeClock,
        overviews: dict[int, str],
        *,
        scripts: dict[int, list[Reply]] | None = None,
        always: dict[int, Script] | None = None,
    ) -> None:
        self.clock = clock
        self.overviews = overviews
        self.scripts = {k: list(v) for k, v in (scripts or {}).items()}
        self.always = always or {}
        self.requests: list[tuple[int, float]] = []
        self.params: list[dict[str, str]] = []

    @property
    def requested_ids(self) -> list[int]:
        return [tmdb_id for tmdb_id, _ in self.requests]

    def handler(self, request: httpx.Request) -> httpx.Response:
        prefix = "/3/movie/"
        assert request.method == "GET"
        assert request.url.host == "tmdb.test"
        assert request.url.path.startswith(prefix)
        tmdb_id = int(request.url.path.removeprefix(prefix))
        self.requests.append((tmdb_id, self.clock.now))
        self.params.append(dict(request.url.params))

        if tmdb_id in self.always:
            reply = self.always[tmdb_id](request)
        elif self.scripts.get(tmdb_id):
            reply = self.scripts[tmdb_id].pop(0)
        elif tmdb_id in self.overviews:
            reply = httpx.Response(200, json={"id": tmdb_id, "overview": self.overviews[tmdb_id]})
        else:
            reply = httpx.Response(
                404, json={"status_code": 34, "status_message": "not found", "success": False}
            )
        if isinstance(reply, Exception):
            raise reply
        return reply


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    fake_time = types.SimpleNamespace(time=fake.time)
    monkeypatch.setattr(limits_memory, "time", fake_time)
    monkeypatch.setattr(tmdb, "time", fake_time)
    return fake


@pytest.fixture
def make_client() -> Iterator[Callable[[FakeTmdb], httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(fake: FakeTmdb) -> httpx.Client:
        client = httpx.Client(transport=httpx.MockTransport(fake.handler))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def links_frame(rows: list[tuple[int, float]]) -> pd.DataFrame:
    """Like MovieLens links.csv read by pandas: tmdbId is float because of NaNs."""
    return pd.DataFrame(
        {
            "movieId": pd.Series([m for m, _ in rows], dtype="int64"),
            "tmdbId": pd.Series([t for _, t in rows], dtype="float64"),
        }
    )


def read_out(path: Path) -> list[tuple[int, int | None, str]]:
    frame = pd.read_csv(
        path, dtype={"tmdbId": "Int64"}, keep_default_na=False, na_values={"tmdbId": [""]}
    )
    assert list(frame.columns) == ["movieId", "tmdbId", "overview"]
    return [
        (int(m), None if pd.isna(t) else int(t), str(o))
        for m, t, o in frame.itertuples(index=False)
    ]


def read_cache(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run(
    fake: FakeTmdb,
    make_client: Callable[[FakeTmdb], httpx.Client],
    links: pd.DataFrame,
    tmp_path: Path,
    **kwargs: object,
) -> EnrichStats:
    return enrich_overviews(
        links,
        tmp_path / "out" / "overviews.csv",
        tmp_path / "cache" / "tmdb.jsonl",
        API_KEY,
        client=make_client(fake),
        base_url=BASE_URL,
        progress=False,
        sleep=fake.clock.sleep,
        **kwargs,  # type: ignore[arg-type]
    )


def test_fetches_overviews_and_writes_csv_in_links_order(
    tmp_path: Path, clock: FakeClock, make_client: Callable[[FakeTmdb], httpx.Client]
) -> None:
    fake = FakeTmdb(
        clock,
        {
            862: 'A cowboy doll,\n  "Woody", is\tthreatened.  ',
            8844: "Two kids find a board game.",
            15602: "",  # TMDB knows the movie but has no overview
        },
    )
    links = links_frame(
        [(1, 862.0), (2, 8844.0), (3, math.nan), (4, 999_999.0), (5, 862.0), (6, 15602.0)]
    )

    stats = run(fake, make_client, links, tmp_path)

    out = tmp_path / "out" / "overviews.csv"
    assert read_out(out) == [
        (1, 862, 'A cowboy doll, "Woody", is threatened.'),
        (2, 8844, "Two kids find a board game."),
        (3, None, ""),
        (4, 999_999, ""),
        (5, 862, 'A cowboy doll, "Woody", is threatened.'),
        (6, 15602, ""),
    ]
    # The duplicated 862 is requested once; the NaN row causes no request.
    assert sorted(fake.requested_ids) == [862, 8844, 15602, 999_999]
    assert all(p == {"api_key": API_KEY, "language": "en-US"} for p in fake.params)
    assert stats == EnrichStats(requested=4, from_cache=0, fetched=4, missing=2, failed=0)
    # ids are written as integers, not 862.0, and no temp file is left behind
    assert out.read_text(encoding="utf-8").splitlines()[1].startswith("1,862,")
    assert [p.name for p in out.parent.iterdir()] == ["overviews.csv"]
    # 200 and 404 answers are cached, one JSON object per line
    cached = {
        r["tmdbId"]: (r["status"], r["overview"])
        for r in read_cache(tmp_path / "cache" / "tmdb.jsonl")
    }
    assert cached == {
        862: (200, 'A cowboy doll, "Woody", is threatened.'),
        8844: (200, "Two kids find a board game."),
        999_999: (404, ""),
        15602: (200, ""),
    }
    assert clock.sleeps == []


def test_second_call_with_same_cache_makes_no_requests(
    tmp_path: Path, clock: FakeClock, make_client: Callable[[FakeTmdb], httpx.Client]
) -> None:
    links = links_frame([(1, 862.0), (2, 404.0), (3, math.nan), (4, 8844.0)])
    overviews = {862: "Toys come alive.", 8844: "A board game."}
    first = FakeTmdb(clock, overviews)
    run(first, make_client, links, tmp_path)
    out = tmp_path / "out" / "overviews.csv"
    first_csv = out.read_bytes()
    assert len(first.requests) == 3

    second = FakeTmdb(clock, overviews)
    stats = run(second, make_client, links, tmp_path)

    assert second.requests == []
    assert stats == EnrichStats(requested=0, from_cache=3, fetched=0, missing=1, failed=0)
    assert out.read_bytes() == first_csv


def test_failed_ids_are_not_cached_and_a_rerun_fetches_only_them(
    tmp_path: Path,
    clock: FakeClock,
    make_client: Callable[[FakeTmdb], httpx.Client],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    links = links_frame([(1, 101.0), (2, 102.0), (3, 103.0)])
    overviews = {101: "One.", 102: "Two.", 103: "Three."}

    def server_error(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="boom")

    def connect_error(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    broken = FakeTmdb(clock, overviews, always={101: server_error, 102: connect_error})
    stats = run(broken, make_client, links, tmp_path, max_retries=2)

    # 1 + 2 retries for each broken id, 1 request for the healthy one
    assert broken.requested_ids == [101, 101, 101, 102, 102, 102, 103]
    assert stats == EnrichStats(requested=7, from_cache=0, fetched=1, missing=0, failed=2)
    # exponential backoff between retries, per id
    assert clock.sleeps == [1.0, 2.0, 1.0, 2.0]
    cache = tmp_path / "cache" / "tmdb.jsonl"
    assert [r["tmdbId"] for r in read_cache(cache)] == [103]
    assert read_out(tmp_path / "out" / "overviews.csv") == [
        (1, 101, ""),
        (2, 102, ""),
        (3, 103, "Three."),
    ]

    healthy = FakeTmdb(clock, overviews)
    stats = run(healthy, make_client, links, tmp_path, max_retries=2)

    assert healthy.requested_ids == [101, 102]
    assert stats == EnrichStats(requested=2, from_cache=1, fetched=2, missing=0, failed=0)
    assert read_out(tmp_path / "out" / "overviews.csv") == [
        (1, 101, "One."),
        (2, 102, "Two."),
        (3, 103, "Three."),
    ]
    assert sorted(r["tmdbId"] for r in read_cache(cache)) == [101, 102, 103]
    # httpx logs full request URLs; the key must have been redacted from them and from ours.
    assert "HTTP Request" in caplog.text
    assert "api_key=***" in caplog.text
    assert API_KEY not in caplog.text


def test_429_retry_after_is_honoured(
    tmp_path: Path, clock: FakeClock, make_client: Callable[[FakeTmdb], httpx.Client]
) -> None:
    fake = FakeTmdb(
        clock,
        {7: "Seven deadly sins."},
        scripts={7: [httpx.Response(429, headers={"Retry-After": "3"}, json={})]},
    )
    links = links_frame([(1, 7.0)])

    stats = run(fake, make_client, links, tmp_path)

    assert clock.sleeps == [3.0]
    assert fake.requests == [(7, 1_700_000_000.0), (7, 1_700_000_003.0)]
    assert stats == EnrichStats(requested=2, from_cache=0, fetched=1, missing=0, failed=0)
    assert read_out(tmp_path / "out" / "overviews.csv") == [(1, 7, "Seven deadly sins.")]


def test_401_raises_tmdb_error_without_leaking_the_key(
    tmp_path: Path,
    clock: FakeClock,
    make_client: Callable[[FakeTmdb], httpx.Client],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    def unauthorized(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"status_code": 7, "status_message": "Invalid API key", "success": False}
        )

    fake = FakeTmdb(clock, {1: "x", 2: "y"}, always={1: unauthorized, 2: unauthorized})
    links = links_frame([(1, 1.0), (2, 2.0)])

    with pytest.raises(TmdbError, match=r"HTTP 401.*TMDB_API_KEY") as excinfo:
        run(fake, make_client, links, tmp_path)

    assert API_KEY not in str(excinfo.value)
    assert API_KEY not in repr(excinfo.value)
    assert excinfo.value.__cause__ is None
    assert fake.requested_ids == [1]  # aborted at once, never retried
    assert clock.sleeps == []
    assert not (tmp_path / "out" / "overviews.csv").exists()
    assert API_KEY not in caplog.text


def test_rate_limit_throttles_requests_via_sleep(
    tmp_path: Path, clock: FakeClock, make_client: Callable[[FakeTmdb], httpx.Client]
) -> None:
    ids = [11, 12, 13, 14, 15]
    fake = FakeTmdb(clock, {i: f"Movie {i}." for i in ids})
    links = links_frame([(i, float(i)) for i in ids])
    start = clock.now

    stats = run(fake, make_client, links, tmp_path, requests_per_second=2)

    assert stats.fetched == 5
    assert stats.requested == 5
    assert clock.sleeps, "the limiter never made the code wait"
    times = [t for _, t in fake.requests]
    for t in times:
        in_window = [u for u in times if t <= u <= t + 1.0]
        assert len(in_window) <= 2, f"more than 2 requests within 1s of {t - start:.3f}"
    # 5 requests at 2 per second need at least two full windows of (fake) time
    assert times[-1] - start > 2.0


def test_truncated_last_cache_line_is_tolerated(
    tmp_path: Path, clock: FakeClock, make_client: Callable[[FakeTmdb], httpx.Client]
) -> None:
    cache = tmp_path / "cache" / "tmdb.jsonl"
    cache.parent.mkdir()
    cache.write_text(
        '{"tmdbId": 1, "overview": "One.", "status": 200}\n'
        '{"tmdbId": 2, "overview": "", "status": 404}\n'
        '{"tmdbId": 3, "overview": "Thr',  # crash mid-write
        encoding="utf-8",
    )
    fake = FakeTmdb(clock, {1: "One (server).", 3: "Three."})
    links = links_frame([(10, 1.0), (20, 2.0), (30, 3.0)])

    stats = run(fake, make_client, links, tmp_path)

    assert fake.requested_ids == [3]
    assert stats == EnrichStats(requested=1, from_cache=2, fetched=1, missing=1, failed=0)
    assert read_out(tmp_path / "out" / "overviews.csv") == [
        (10, 1, "One."),
        (20, 2, ""),
        (30, 3, "Three."),
    ]
    # The new record starts on its own line, so it is readable after the partial one.
    lines = cache.read_text(encoding="utf-8").splitlines()
    assert lines[2] == '{"tmdbId": 3, "overview": "Thr'
    assert json.loads(lines[3]) == {"tmdbId": 3, "overview": "Three.", "status": 200}

    again = FakeTmdb(clock, {})
    stats = run(again, make_client, links, tmp_path)
    assert again.requests == []
    assert stats.from_cache == 3
