"""Crash durability: a real ``recsys-gql serve`` process on a SQLite file, under continuous
``rateMovie`` load from several client threads, is killed with SIGKILL at seeded random
moments, 12 times, and restarted each time. No acknowledged rating may be lost and the file
must stay intact.

Each cycle: start the process on a fresh loopback port and wait for ``/readyz`` 200; read every
client user's ratings through the API and check them; publish the server to the clients, which
write as fast as they can; once this server has acknowledged a write, wait a random 0.05-0.8 s
and ``kill -9`` it. With the server down, open the database file read-only with ``sqlite3``,
run ``PRAGMA integrity_check`` (must be ``ok``) and check the ratings again. After the last
kill, one more restart is checked through the API, stopped cleanly and checked once more.

What the checks allow
---------------------
Every client thread writes as its own signed-up user, one request at a time, so the writes on
any (user, movie) pair are issued in a known order. A request whose answer never came (the
server was killed with it in flight) is *in doubt*: it may or may not have been committed.
After a transport error the thread waits until that server has been killed before it writes
again, so an in-doubt write can never commit after a later write. Hence, for every pair with an
acknowledged write, the row must exist and hold the value of the **last acknowledged write, or
of an in-doubt write issued after it**; a pair with no acknowledged write may be absent or hold
an in-doubt value; no other row may exist for these users. A transport error while the server
was still marked live (not killed), a 5xx, a GraphQL error or any answer but ``RatingSaved``
fails the test.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from recsys_gql.settings import Settings

SEED = 4_217
KILLS = 12
CLIENT_THREADS = 4
MOVIE_POOL = 40
HALF_STARS = [k / 2 for k in range(1, 11)]
UNLIMITED = "100000000/minute"
READY_TIMEOUT = 60.0
TEST_BUDGET = 240.0
"""A hard bound on the whole test; it normally takes well under a minute."""

RATE = """mutation ($u: Int!, $m: Int!, $r: Float!) {
  rateMovie(input: {userId: $u, movieId: $m, rating: $r}) {
    __typename
    ... on RatingSaved { rating { rating } }
  }
}"""
RATINGS = """query ($u: Int!) { user(id: $u) { ratings(first: 100) {
  totalCount edges { node { rating movie { id } } } } } }"""
SIGN_UP = "mutation { signUp { token user { id } } }"

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

Pair = tuple[int, int]


@dataclass
class Attempt:
    rating: float
    acked: bool = False


@dataclass
class Load:
    """What the client threads share with the test, guarded by ``cond``."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    url: str | None = None
    """The live server; ``None`` from just before a kill until the next server is ready."""
    generation: int = 0
    """Bumped at every kill."""
    stop: bool = False
    history: dict[Pair, list[Attempt]] = field(default_factory=lambda: defaultdict(list))
    """Every write per pair, in the order it was issued (one thread writes each pair)."""
    acked_in_generation: int = 0
    acked: int = 0
    in_doubt: int = 0
    problems: list[str] = field(default_factory=list)


def free_port(used: set[int]) -> int:
    """A free loopback port none of the earlier servers had (so a request meant for a killed
    server can never reach its successor)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port not in used:
            used.add(port)
            return port


def serve_command() -> list[str]:
    script = Path(sys.executable).with_name("recsys-gql")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from recsys_gql.cli import main; raise SystemExit(main())"]


def copy_database(source_url: str, target: Path) -> None:
    """A consistent copy of the session's initialised database (the backup API reads it in one
    transaction, WAL included)."""
    source = make_url(source_url).database
    assert source, source_url
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


class Harness:
    """Starts, kills and restarts the server process; bounds every wait by a deadline."""

    def __init__(self, settings: Settings, database: Path, log: Path, deadline: float) -> None:
        self.env = {
            **os.environ,
            "RECSYS_GQL_ARTIFACTS_DIR": str(settings.artifacts_dir),
            "RECSYS_GQL_DATA_DIR": str(settings.data_dir),
            "RECSYS_GQL_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "RECSYS_GQL_GRAPHIQL": "false",
            "RECSYS_GQL_RATE_LIMIT_READS": UNLIMITED,
            "RECSYS_GQL_RATE_LIMIT_WRITES": UNLIMITED,
        }
        self.log = log
        self.deadline = deadline
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.starts: list[float] = []
        self.ports: set[int] = set()

    def remaining(self, bound: float) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"the test ran over its {TEST_BUDGET:.0f} s budget\n{self.log_tail()}")
        return min(bound, left)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def start(self) -> str:
        assert self.process is None
        port = free_port(self.ports)
        began = time.monotonic()
        with self.log.open("ab") as log:
            log.write(f"\n--- start on port {port}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [*serve_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.log.parent,
            )
        self.url = f"http://127.0.0.1:{port}"
        wait_until = time.monotonic() + self.remaining(READY_TIMEOUT)
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > wait_until:
                pytest.fail(f"{self.url} was not ready in time\n{self.log_tail()}")
            time.sleep(0.05)
        self.starts.append(time.monotonic() - began)
        return self.url

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=self.remaining(30))
        assert self.process.returncode == -signal.SIGKILL
        self.process = None

    def stop(self) -> None:
        """A clean shutdown (or a kill when it does not come)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None


def post(
    http: httpx.Client, url: str, query: str, variables: dict[str, Any], token: str = ""
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = http.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def writer(load: Load, user: int, token: str, movies: list[int], seed: int) -> None:
    """Rate random movies as ``user`` until told to stop, one request at a time."""
    try:
        write_until_stopped(load, user, token, movies, random.Random(seed))
    except Exception as exc:  # reported by the test, not lost in the thread
        with load.cond:
            load.problems.append(f"writer for user {user} crashed: {type(exc).__name__}: {exc}")
            load.stop = True
            load.cond.notify_all()


def write_until_stopped(
    load: Load, user: int, token: str, movies: list[int], rng: random.Random
) -> None:
    with httpx.Client(timeout=10) as http:
        while True:
            with load.cond:
                while load.url is None and not load.stop:
                    load.cond.wait(timeout=0.5)
                if load.stop:
                    return
                url, generation = load.url, load.generation
                movie, rating = rng.choice(movies), rng.choice(HALF_STARS)
                attempt = Attempt(rating)
                load.history[(user, movie)].append(attempt)
            variables = {"u": user, "m": movie, "r": rating}
            try:
                response = http.post(
                    f"{url}/graphql",
                    json={"query": RATE, "variables": variables},
                    headers={"Authorization": f"Bearer {token}"},
                )
            except httpx.TransportError as exc:
                with load.cond:
                    load.in_doubt += 1
                    if load.generation == generation and load.url is not None:
                        load.problems.append(
                            f"{type(exc).__name__} from a live server: {exc} ({variables})"
                        )
                        load.stop = True
                        load.cond.notify_all()
                        return
                    # wait until that server is dead: the in-doubt write cannot commit later
                    while load.generation == generation and not load.stop:
                        load.cond.wait(timeout=0.5)
                continue
            problem = None
            if response.status_code != 200:
                problem = f"HTTP {response.status_code}: {response.text[:500]}"
            else:
                body = response.json()
                payload = (body.get("data") or {}).get("rateMovie") or {}
                if body.get("errors") or payload.get("rating", {}).get("rating") != rating:
                    problem = f"answered {response.text[:500]}"
            with load.cond:
                if problem is not None:
                    load.problems.append(f"{variables}: {problem}")
                    load.stop = True
                    load.cond.notify_all()
                    return
                attempt.acked = True
                load.acked += 1
                load.acked_in_generation += 1
                load.cond.notify_all()


def check(load: Load, stored: dict[Pair, list[float]], users: set[int], where: str) -> int:
    """Assert the stored rows match the history (see the module docstring); returns how many
    acknowledged writes the check covered. Call with no write in flight."""
    covered = 0
    with load.cond:
        for pair, values in stored.items():
            assert pair[0] in users
            assert pair in load.history, f"{where}: row {pair}={values} was never written"
            assert len(values) == 1, f"{where}: {pair} has {len(values)} rows"
        for pair, attempts in load.history.items():
            acked = [i for i, a in enumerate(attempts) if a.acked]
            covered += len(acked)
            after = attempts[acked[-1] :] if acked else attempts
            allowed = {a.rating for a in after}
            history = [(a.rating, "ack" if a.acked else "in doubt") for a in attempts]
            if pair not in stored:
                assert not acked, f"{where}: acknowledged {pair} is missing ({history})"
                continue
            [value] = stored[pair]
            assert value in allowed, (
                f"{where}: {pair} holds {value}, allowed {sorted(allowed)} (history {history})"
            )
    return covered


def offline_rows(database: Path, users: set[int]) -> dict[Pair, list[float]]:
    """Integrity-check the file and read the users' ratings, read-only, server down."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        integrity = connection.execute("PRAGMA integrity_check").fetchall()
        assert integrity == [("ok",)], f"integrity_check: {integrity}"
        marks = ", ".join("?" * len(users))
        rows = connection.execute(
            f"SELECT user_id, movie_id, rating FROM ratings WHERE user_id IN ({marks})",
            sorted(users),
        ).fetchall()
    stored: dict[Pair, list[float]] = defaultdict(list)
    for user_id, movie_id, rating in rows:
        stored[(int(user_id), int(movie_id))].append(float(rating))
    return stored


def api_rows(http: httpx.Client, url: str, users: set[int]) -> dict[Pair, list[float]]:
    stored: dict[Pair, list[float]] = defaultdict(list)
    for user in sorted(users):
        ratings = post(http, url, RATINGS, {"u": user})["user"]["ratings"]
        assert ratings["totalCount"] == len(ratings["edges"]) <= MOVIE_POOL
        for edge in ratings["edges"]:
            stored[(user, edge["node"]["movie"]["id"])].append(edge["node"]["rating"])
    return stored


@pytest.fixture
def harness(api_settings: Settings, tmp_path: Path) -> Iterator[tuple[Harness, Path]]:
    database = tmp_path / "crash.db"
    copy_database(api_settings.database_url, database)
    running = Harness(
        api_settings, database, tmp_path / "serve.log", time.monotonic() + TEST_BUDGET
    )
    try:
        yield running, database
    finally:
        running.stop()


def test_acknowledged_ratings_survive_repeated_sigkill(
    harness: tuple[Harness, Path], api_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    server, database = harness
    began = time.monotonic()
    rng = random.Random(SEED)
    with (api_settings.raw_data_dir / "movies.csv").open(newline="", encoding="utf-8") as file:
        catalog = sorted(int(row["movieId"]) for row in csv.DictReader(file))
    load = Load()
    threads: list[threading.Thread] = []
    checks = offline_checks = 0
    with httpx.Client(timeout=30) as http:
        url = server.start()
        signed = [post(http, url, SIGN_UP, {})["signUp"] for _ in range(CLIENT_THREADS)]
        users = {int(s["user"]["id"]) for s in signed}
        for k, s in enumerate(signed):
            movies = sorted(rng.sample(catalog, MOVIE_POOL))
            threads.append(
                threading.Thread(
                    target=writer,
                    args=(load, int(s["user"]["id"]), s["token"], movies, SEED + k),
                    name=f"writer-{k}",
                    daemon=True,
                )
            )
        for thread in threads:
            thread.start()
        try:
            for kill in range(KILLS + 1):
                # the fresh server must hold everything acknowledged so far
                check(load, api_rows(http, url, users), users, f"API after restart {kill}")
                checks += 1
                if kill == KILLS:
                    break
                with load.cond:
                    load.url, load.acked_in_generation = url, 0
                    load.cond.notify_all()
                    wait_until = time.monotonic() + server.remaining(30)
                    while load.acked_in_generation == 0 and not load.stop:
                        assert time.monotonic() < wait_until, "no write was acknowledged"
                        load.cond.wait(timeout=0.5)
                    assert not load.problems, load.problems
                time.sleep(rng.uniform(0.05, 0.8))
                with load.cond:
                    load.url = None  # before the kill: any later error is the kill's
                    load.generation += 1
                server.kill()
                with load.cond:
                    load.cond.notify_all()
                    assert not load.problems, load.problems
                check(load, offline_rows(database, users), users, f"file after kill {kill + 1}")
                offline_checks += 1
                url = server.start()
        finally:
            with load.cond:
                load.stop = True
                load.cond.notify_all()
            for thread in threads:
                thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        assert not load.problems, load.problems
        server.stop()
    verified = check(load, offline_rows(database, users), users, "file after a clean stop")

    elapsed = time.monotonic() - began
    assert offline_checks == KILLS
    assert load.acked > 0
    assert load.in_doubt > 0, "no kill landed while a write was in flight"
    with capsys.disabled():
        print(
            f"\n[crash durability] {KILLS} SIGKILLs survived, {load.acked} writes acknowledged "
            f"({load.in_doubt} more left unanswered by a kill) from {CLIENT_THREADS} clients; "
            f"every acknowledged write so far verified after each kill ({verified} at the end; "
            f"{offline_checks} "
            f"read-only file checks with integrity_check ok, {checks} API checks after "
            f"restarts); restarts took {min(server.starts):.1f}-{max(server.starts):.1f} s; "
            f"{elapsed:.1f} s in all"
        )
