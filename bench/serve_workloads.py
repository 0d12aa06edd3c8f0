"""What ``python -m bench.serve`` sends: the operations, their request bodies and their targets.

Traffic is shaped like a front end's with many users, not like a cache test:

* ``typename`` — ``{ __typename }``: the ceiling of this server and client, in the same run;
* ``movie`` and ``similarMovies`` — over 1,000 catalog ids spread across the catalog;
* ``recommendations`` — users drawn uniformly from all 610 users (seeded): with the server's
  memo of answers larger than the user count, most are repeats it answers from memory; its
  hit ratio is reported, and this is the *cached* figure;
* ``recommendationsUncached`` — users drawn the same way, each request with a ``diversity``
  of its own (the default 0.5 plus a millionth per body), so no answer can come from the memo
  (hit ratio reported, ~0) while the request still takes the default path (ranking stage and
  diversity re-ranking): the figure that counts for recommendations. An ``alpha`` of its own,
  as this used before, would have measured the linear blend instead of the default ranker;
* ``searchMovies`` — 30,000 distinct texts of 4-16 consecutive words from movie overviews
  (seeded), so the search cache hits only by accident (hit ratio reported);
* ``rateMovie`` — authenticated writes by signed-up users, one per load lane (see
  :func:`rate_combo`), every acknowledged write read back from the database afterwards;
* ``mixed`` — 70% uncached recommendations, 10% ``movie``, 10% ``similarMovies``, 8%
  ``searchMovies`` and 2% ``rateMovie``, interleaved (seeded shuffle).

The warm-up and verification send other bodies of the same kinds (another seed or range), so
the recorded run repeats none of theirs.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from recsys_gql.recsys.diversity import DEFAULT_DIVERSITY

KNOWN_USERS = range(1, 611)
"""The users of ml-latest-small."""
READ_MOVIES = 1000
"""How many catalog ids the ``movie`` and ``similarMovies`` runs cycle through."""
DISTINCT_BODIES = 30_000
"""Bodies of each varied read (~40 s at 700 req/s before one repeats)."""
RATINGS = tuple(0.5 * i for i in range(1, 11))
SEED = 19
WARMUP_SEED = 91
SEARCH_WORDS = (4, 16)
"""Shortest and longest search text, in words."""
MIXED_SHARES = {"recommendations": 70, "movie": 10, "similar": 10, "search": 8, "rate": 2}
"""Percent of each kind of request in the ``mixed`` workload."""
MIXED_SEARCHES = 3000
"""Search texts of the ``mixed`` workload (more than its 8% of its bodies)."""

MOVIE_QUERY = (
    "query Movie($id: Int!) { movie(id: $id) { id title year genres ratingsCount averageRating } }"
)
RECS_QUERY = (
    "query Recs($userId: Int!) { recommendations(userId: $userId, first: 10) "
    "{ score movie { title } } }"
)
RECS_UNCACHED_QUERY = (
    "query Recs($userId: Int!, $diversity: Float) { recommendations(userId: $userId, first: 10, "
    "diversity: $diversity) { score movie { title } } }"
)
SIMILAR_QUERY = (
    "query Similar($movieId: Int!) { similarMovies(movieId: $movieId, first: 10) "
    "{ similarity movie { title } } }"
)
SEARCH_QUERY = (
    "query Search($query: String!) { searchMovies(query: $query, first: 10) "
    "{ score movie { title } } }"
)
RATE_QUERY = (
    "mutation Rate($u: Int!, $m: Int!, $r: Float!) "
    "{ rateMovie(input: {userId: $u, movieId: $m, rating: $r}) { __typename "
    "... on RatingSaved { message user { id } } "
    "... on InvalidRating { message } ... on MovieNotFound { message } "
    "... on Unauthenticated { message } ... on Forbidden { message } } }"
)
SIGN_UP_QUERY = "mutation { signUp { token user { id } } }"
SAVED = re.compile(r"saved (?P<rating>[0-9.]+) for movie (?P<movie>\d+)")
WRITE_MARKER = '"__typename":"RatingSaved"'
READ_MARKER = '{"data":{"'

Mode = Literal["cycle", "rate", "mixed"]


@dataclass(frozen=True)
class Targets:
    """What one operation must reach (``None``: nothing asked)."""

    p99_ms: float | None = None
    share_of_typename: float | None = None
    req_per_s: float | None = None
    zero_errors: bool = False
    two_worker_speedup: float | None = None


@dataclass(frozen=True)
class Operation:
    """One benchmarked workload.

    ``bodies`` are the JSON request bodies a run cycles through. ``rate`` runs build a fresh
    ``rateMovie`` body per request from ``rate_movies`` and the lane's user; ``mixed`` runs
    send one such write every ``write_every`` requests and ``bodies`` in between. ``marker``
    must appear in every successful read; a write must be acknowledged with ``RatingSaved``.
    """

    name: str
    marker: str
    bodies: tuple[str, ...] = ()
    mode: Mode = "cycle"
    rate_movies: tuple[int, ...] = ()
    write_every: int = 0
    warmup_bodies: tuple[str, ...] = ()
    targets: Targets = Targets()
    cache: Literal["memo", "search", None] = None
    """Which server cache this workload could hit (its hit ratio is reported)."""
    start: int = 0
    """The body a run starts from: each round of ``--repeat`` starts elsewhere, so that no
    round sends the bodies an earlier one did (the caches would answer them)."""

    def for_round(self, index: int, rounds: int) -> Operation:
        """This operation as round ``index`` of ``rounds`` sends it: from its own share of
        the bodies (a run sends fewer than ``len(bodies) / rounds`` at the rates seen)."""
        return replace(self, start=index * len(self.bodies) // max(rounds, 1))

    def for_warmup(self) -> Operation:
        """This operation as the verification and the warm-up send it."""
        return replace(self, bodies=self.warmup_bodies) if self.warmup_bodies else self

    @property
    def writes(self) -> bool:
        """Whether the workload sends ``rateMovie`` writes."""
        return self.mode != "cycle"


@dataclass(frozen=True)
class BenchUser:
    """A user the benchmark signed up, with its bearer token (kept out of the JSON)."""

    id: int
    token: str


def body(query: str, variables: dict[str, Any]) -> str:
    """A compact GraphQL POST body."""
    return json.dumps({"query": query, "variables": variables}, separators=(",", ":"))


def rate_body(user: int, movie: int, rating: float) -> str:
    """The ``rateMovie`` body for one (user, movie, rating)."""
    return body(RATE_QUERY, {"u": user, "m": movie, "r": rating})


def rate_combo(lane: int, j: int, movies: Sequence[int]) -> tuple[int, float]:
    """(movie, rating) of the ``j``-th write of load lane ``lane`` (the Lua script's formula).

    Each lane's user rates ``movies`` in turn, so its (user, movie) pairs do not repeat until
    it has rated them all; the rating rotates through 0.5..5.0 with an offset per lane and is
    a function of the pair, so a repeat rewrites the same value.
    """
    j %= len(movies)
    return movies[j], RATINGS[(j + lane) % len(RATINGS)]


def auth_headers(user: BenchUser) -> dict[str, str]:
    """The headers of a write for ``user``."""
    return {"Content-Type": "application/json", "Authorization": f"Bearer {user.token}"}


def spread(items: Sequence[int], count: int) -> list[int]:
    """``count`` items taken evenly across ``items`` (all of them when there are fewer)."""
    if len(items) <= count:
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def uniform_users(count: int, seed: int, ids: Sequence[int] = KNOWN_USERS) -> list[int]:
    """``count`` user ids drawn uniformly (with repeats) from ``ids``, every known user
    unless given (the engine's timing passes the users of the run it loaded)."""
    rng = np.random.default_rng(seed)
    return [int(u) for u in rng.choice(np.asarray(ids), size=count)]


def recommendation_bodies(seed: int, *, uncached: bool) -> tuple[str, ...]:
    """``recommendations`` bodies for uniformly drawn users; ``uncached``, every body has a
    ``diversity`` of its own (the default :data:`DEFAULT_DIVERSITY` + i·10⁻⁶, the warm-up's
    from +0.05), so the memo can never answer it and the work is the default request's."""
    users = uniform_users(DISTINCT_BODIES, seed)
    if not uncached:
        return tuple(body(RECS_QUERY, {"userId": u}) for u in users)
    base = DEFAULT_DIVERSITY if seed == SEED else DEFAULT_DIVERSITY + 0.05
    return tuple(
        body(RECS_UNCACHED_QUERY, {"userId": u, "diversity": round(base + i * 1e-6, 6)})
        for i, u in enumerate(users)
    )


def search_texts(data_dir: Path, count: int, seed: int) -> list[str]:
    """``count`` distinct texts of 4-16 consecutive words from the overviews, seeded."""
    with (data_dir / "overviews.csv").open(encoding="utf-8", newline="") as handle:
        words = [row["overview"].split() for row in csv.DictReader(handle)]
    words = [w for w in words if len(w) >= SEARCH_WORDS[0]]
    rng = np.random.default_rng(seed)
    texts: dict[str, None] = {}
    while len(texts) < count:
        overview = words[int(rng.integers(len(words)))]
        size = int(rng.integers(SEARCH_WORDS[0], SEARCH_WORDS[1] + 1))
        start = int(rng.integers(0, max(1, len(overview) - size + 1)))
        texts[" ".join(overview[start : start + size])] = None
    return list(texts)


def mixed_bodies(
    read_ids: Sequence[int], searches: Sequence[str], seed: int
) -> tuple[tuple[str, ...], int]:
    """The ``mixed`` read bodies in their shares (writes are made per request), shuffled, and
    how often a write comes (one in every ``100 / rate share`` requests)."""
    total = DISTINCT_BODIES
    reads = sum(v for k, v in MIXED_SHARES.items() if k != "rate")
    count = {k: total * v // reads for k, v in MIXED_SHARES.items() if k != "rate"}
    recs = recommendation_bodies(seed, uncached=True)[: count["recommendations"]]
    rng = np.random.default_rng(seed)
    movies = [int(m) for m in rng.choice(np.asarray(read_ids), size=count["movie"])]
    similar = [int(m) for m in rng.choice(np.asarray(read_ids), size=count["similar"])]
    bodies = [
        *recs,
        *(body(MOVIE_QUERY, {"id": m}) for m in movies),
        *(body(SIMILAR_QUERY, {"movieId": m}) for m in similar),
        *(body(SEARCH_QUERY, {"query": q}) for q in searches[: count["search"]]),
    ]
    order = rng.permutation(len(bodies))
    return tuple(bodies[i] for i in order), 100 // MIXED_SHARES["rate"]


def operations(movie_ids: Sequence[int], data_dir: Path) -> list[Operation]:
    """The benchmarked operations, in the order they run (the write last)."""
    read_ids = spread(movie_ids, READ_MOVIES)
    warm_ids = spread(movie_ids[1:], READ_MOVIES)
    searches = search_texts(data_dir, 2 * DISTINCT_BODIES + 2 * MIXED_SEARCHES, SEED)
    runs, warm = searches[:DISTINCT_BODIES], searches[DISTINCT_BODIES : 2 * DISTINCT_BODIES]
    mixed_texts = searches[2 * DISTINCT_BODIES :]  # none of the searchMovies run's
    mixed, write_every = mixed_bodies(read_ids, mixed_texts[:MIXED_SEARCHES], SEED)
    mixed_warm, _ = mixed_bodies(warm_ids, mixed_texts[MIXED_SEARCHES:], WARMUP_SEED)
    search_body = [body(SEARCH_QUERY, {"query": q}) for q in runs]
    return [
        Operation("typename", '"__typename":"Query"', (body("{ __typename }", {}),)),
        Operation("movie", '"movie":{"id":', tuple(body(MOVIE_QUERY, {"id": m}) for m in read_ids)),
        Operation(
            "recommendations",
            '"score":',
            recommendation_bodies(SEED, uncached=False),
            warmup_bodies=recommendation_bodies(WARMUP_SEED, uncached=False),
            cache="memo",
        ),
        Operation(
            "recommendationsUncached",
            '"score":',
            recommendation_bodies(SEED, uncached=True),
            warmup_bodies=recommendation_bodies(WARMUP_SEED, uncached=True),
            targets=Targets(p99_ms=100.0, share_of_typename=0.5),
            cache="memo",
        ),
        Operation(
            "similarMovies",
            '"similarity":',
            tuple(body(SIMILAR_QUERY, {"movieId": m}) for m in read_ids),
        ),
        Operation(
            "searchMovies",
            '"score":',
            tuple(search_body),
            warmup_bodies=tuple(body(SEARCH_QUERY, {"query": q}) for q in warm),
            targets=Targets(p99_ms=250.0, req_per_s=200.0),
            cache="search",
        ),
        Operation(
            "mixed",
            READ_MARKER,
            mixed,
            mode="mixed",
            rate_movies=tuple(movie_ids),
            write_every=write_every,
            warmup_bodies=mixed_warm,
            targets=Targets(p99_ms=150.0, zero_errors=True, two_worker_speedup=1.7),
            cache="memo",
        ),
        Operation(
            "rateMovie",
            WRITE_MARKER,
            mode="rate",
            rate_movies=tuple(movie_ids),
            targets=Targets(req_per_s=300.0, zero_errors=True),
        ),
    ]
