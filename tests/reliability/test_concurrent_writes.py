"""Concurrent writes through real HTTP: 1,000 ``rateMovie`` calls from 50 concurrent clients on
overlapping (user, movie) pairs, once against a SQLite file and once against PostgreSQL.

The workload (seeded): 10 signed-up users × 20 real movies = 200 pairs, 1,000 writes in a
random order with random half-star ratings, drained by 50 clients that each hold their own
HTTP connection and always have one request in flight, so several writes on the same pair are
regularly in flight together. Every write must be acknowledged with ``RatingSaved`` (no
transport error, no 5xx, no GraphQL error, and never "database is locked").

Afterwards, per pair: the rating is readable through the API, the database holds exactly one
row for it (API and database agree), and the stored value is one a correct server may hold.

Which final value is correct
----------------------------
The server commits a write before it answers, but for two writes on the same pair that are in
flight together the commit order and the order in which the clients *receive* the two
acknowledgements can differ (the first committed answer can reach its client later; seen on
PostgreSQL). Asserting "the stored value is the last acknowledged one" for every pair would
therefore be flaky and wrong. The check is the linearizability bound, which is exact:

* for each write the client records a timestamp taken *before* its request is sent and one
  taken *after* its answer arrived (so the true interval lies within them);
* write ``v`` real-time-follows write ``w`` when ``v`` was sent after ``w`` was acknowledged;
  then ``w`` committed before ``v`` reached the server, so ``w`` cannot be the last commit;
* the *candidates* of a pair are its writes that no other write on the pair real-time-follows,
  and the last commit must be one of them: **the stored value must equal a candidate's value**.

When a pair's last acknowledged write was sent after every other write on the pair had been
acknowledged, it is the only candidate, and the assertion is exactly "the stored value is the
last acknowledged one"; the test counts those pairs and requires at least a quarter of all
pairs to be like that (so the bound is not vacuous), and that some pair really ended with
concurrent writes (so the overlap was exercised).
"""

from __future__ import annotations

import asyncio
import csv
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from recsys_gql.settings import Settings
from tests.api.conftest import Server, running, sign_up

SEED = 20_260_605
USERS = 10
MOVIES = 20
WRITES = 1_000
CLIENTS = 50
HALF_STARS = [k / 2 for k in range(1, 11)]
UNLIMITED = "100000000/minute"

RATE = """mutation ($u: Int!, $m: Int!, $r: Float!) {
  rateMovie(input: {userId: $u, movieId: $m, rating: $r}) {
    __typename
    ... on RatingSaved { rating { rating user { id } movie { id } } }
    ... on InvalidRating { message }
    ... on MovieNotFound { message }
    ... on Unauthenticated { message }
    ... on Forbidden { message }
  }
}"""
RATINGS = """query ($u: Int!) { user(id: $u) { ratingsCount ratings(first: 100) {
  totalCount edges { node { rating movie { id } } } } } }"""

Pair = tuple[int, int]


@dataclass(frozen=True)
class Write:
    """One planned write and, once acknowledged, when (``perf_counter_ns``)."""

    index: int
    user: int
    movie: int
    rating: float


@dataclass(frozen=True)
class Ack:
    write: Write
    sent_ns: int
    """Taken before the request was handed to the client: not after it left."""
    acked_ns: int
    """Taken after the whole answer was read: not before it arrived."""
    order: int
    """Position among all acknowledgements, in the order they were received."""


@dataclass
class Storm:
    acks: list[Ack]
    problems: list[str]
    peak_in_flight: int
    seconds: float


@pytest.fixture
def server(api_settings: Settings) -> Iterator[Server]:
    settings = api_settings.model_copy(
        update={"rate_limit_reads": UNLIMITED, "rate_limit_writes": UNLIMITED}
    )
    with running(settings) as running_server:
        yield running_server


def real_movie_ids(settings: Settings, count: int, rng: random.Random) -> list[int]:
    with (settings.raw_data_dir / "movies.csv").open(newline="", encoding="utf-8") as file:
        ids = sorted(int(row["movieId"]) for row in csv.DictReader(file))
    return sorted(rng.sample(ids, count))


def plan_writes(users: list[int], movies: list[int], rng: random.Random) -> list[Write]:
    pairs = [(u, m) for u in users for m in movies]
    # every pair written at least twice, the rest at random: overlapping pairs by construction
    chosen = pairs * 2 + [rng.choice(pairs) for _ in range(WRITES - 2 * len(pairs))]
    rng.shuffle(chosen)
    return [Write(i, u, m, rng.choice(HALF_STARS)) for i, (u, m) in enumerate(chosen)]


async def _storm(url: str, plan: list[Write], tokens: dict[int, str]) -> Storm:
    pending = iter(plan)
    acks: list[Ack] = []
    problems: list[str] = []
    in_flight = 0
    peak = 0

    async def client() -> None:
        nonlocal in_flight, peak
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
            for write in pending:  # one shared iterator: each write is sent exactly once
                payload = {
                    "query": RATE,
                    "variables": {"u": write.user, "m": write.movie, "r": write.rating},
                }
                headers = {"Authorization": f"Bearer {tokens[write.user]}"}
                in_flight += 1
                peak = max(peak, in_flight)
                sent = time.perf_counter_ns()
                try:
                    response = await http.post("/graphql", json=payload, headers=headers)
                except httpx.HTTPError as exc:
                    problems.append(f"write {write.index}: {type(exc).__name__}: {exc}")
                    continue
                finally:
                    in_flight -= 1
                acked = time.perf_counter_ns()
                problem = _refusal(write, response)
                if problem is None:
                    acks.append(Ack(write, sent, acked, len(acks)))
                else:
                    problems.append(f"write {write.index} {write}: {problem}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return Storm(acks, problems, peak, time.perf_counter() - started)


def _refusal(write: Write, response: httpx.Response) -> str | None:
    """Why ``response`` is not a clean ``RatingSaved`` of ``write`` (``None`` when it is)."""
    if "database is locked" in response.text.lower():
        return (
            f"'database is locked' reached the client: HTTP {response.status_code} {response.text}"
        )
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:500]}"
    body: dict[str, Any] = response.json()
    if body.get("errors"):
        return f"errors: {body['errors']}"
    payload = body["data"]["rateMovie"]
    if payload["__typename"] != "RatingSaved":
        return f"answered {payload}"
    saved = payload["rating"]
    if (saved["user"]["id"], saved["movie"]["id"], saved["rating"]) != (
        write.user,
        write.movie,
        write.rating,
    ):
        return f"RatingSaved echoes {saved}"
    return None


def read_through_api(server: Server, users: list[int]) -> dict[Pair, float]:
    seen: dict[Pair, float] = {}
    for user in users:
        data = server.graphql(RATINGS, {"u": user})
        assert "errors" not in data, data
        node = data["data"]["user"]
        edges = node["ratings"]["edges"]
        assert node["ratingsCount"] == node["ratings"]["totalCount"] == len(edges), node
        for edge in edges:
            pair = (user, edge["node"]["movie"]["id"])
            assert pair not in seen, f"the API lists {pair} twice"
            seen[pair] = edge["node"]["rating"]
    return seen


def read_rows(database_url: str, users: list[int]) -> dict[Pair, list[float]]:
    """Every row of these users' ratings, straight from the database."""

    async def read() -> list[Any]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                result = await connection.execute(
                    text(
                        "SELECT user_id, movie_id, rating FROM ratings "
                        f"WHERE user_id IN ({', '.join(str(int(u)) for u in users)})"
                    )
                )
                return list(result.all())
        finally:
            await engine.dispose()

    rows: dict[Pair, list[float]] = defaultdict(list)
    for user_id, movie_id, rating in asyncio.run(read()):
        rows[(int(user_id), int(movie_id))].append(float(rating))
    return rows


def candidates(acks: list[Ack]) -> list[Ack]:
    """The writes of one pair that no other write of the pair real-time-follows (see the module
    docstring): the last commit is one of them."""
    return [w for w in acks if not any(v.sent_ns > w.acked_ns for v in acks if v is not w)]


def test_concurrent_rate_movie_keeps_one_row_per_pair_with_an_acknowledged_value(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(SEED)
    signed = [sign_up(server) for _ in range(USERS)]
    tokens = dict(signed)
    users = sorted(tokens)
    movies = real_movie_ids(server.settings, MOVIES, rng)
    plan = plan_writes(users, movies, rng)

    storm = asyncio.run(_storm(server.url, plan, tokens))

    assert not storm.problems, (
        f"{len(storm.problems)} of {WRITES} writes were not acknowledged cleanly:\n"
        + "\n".join(storm.problems[:20])
    )
    assert len(storm.acks) == WRITES
    assert storm.peak_in_flight == CLIENTS

    by_pair: dict[Pair, list[Ack]] = defaultdict(list)
    for ack in storm.acks:
        by_pair[(ack.write.user, ack.write.movie)].append(ack)
    assert len(by_pair) == USERS * MOVIES

    through_api = read_through_api(server, users)
    rows = read_rows(server.settings.database_url, users)

    # every acknowledged pair is readable, and nothing else was written for these users
    assert set(through_api) == set(by_pair)
    assert set(rows) == set(by_pair)
    strict = overlapped = last_won = 0
    for pair, acks in by_pair.items():
        assert len(rows[pair]) == 1, f"{pair} has {len(rows[pair])} rows: {rows[pair]}"
        [stored] = rows[pair]
        assert through_api[pair] == stored, f"{pair}: API {through_api[pair]}, DB {stored}"
        acknowledged = {a.write.rating for a in acks}
        assert stored in acknowledged, f"{pair}: stored {stored}, acknowledged {acknowledged}"
        last = max(acks, key=lambda a: a.order)
        allowed = candidates(acks)
        assert last in allowed  # nothing can have been sent after the last acknowledgement
        assert stored in {a.write.rating for a in allowed}, (
            f"{pair}: stored {stored}, but the last commit must be one of "
            f"{[(a.write.index, a.write.rating) for a in allowed]} (all acks: "
            f"{[(a.write.index, a.write.rating, a.order) for a in acks]})"
        )
        if len(allowed) == 1:
            strict += 1
            assert stored == last.write.rating
        else:
            overlapped += 1
        last_won += stored == last.write.rating
    pairs = len(by_pair)
    # the bound is not vacuous: many pairs (≥ 1/4) end with an isolated write, checked exactly ...
    assert strict >= pairs // 4, f"only {strict} of {pairs} pairs ended with an isolated write"
    # ... and the workload really overlapped writes on one pair (the point of the test)
    assert overlapped > 0, "no pair ended with two writes in flight together"

    with capsys.disabled():
        print(
            f"\n[concurrent writes, {server.settings.database_url.split(':')[0]}] "
            f"{len(storm.acks)} writes from {CLIENTS} clients (peak {storm.peak_in_flight} in "
            f"flight) in {storm.seconds:.1f} s, {pairs} pairs checked: {strict} exactly the "
            f"last acknowledged value, {overlapped} ended with overlapping writes (stored value "
            f"among the possible last commits; {last_won}/{pairs} equal the last ack received)"
        )
