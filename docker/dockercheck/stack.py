"""The compose stack for real: PostgreSQL, Redis, the one-shot train and two api replicas.

Each step is what an operator would do or fear, checked through the public API on the
replicas' published ports: a rating written through replica A changes replica B's next
recommendations; a write limit holds across both (the counters live in Redis); killing one
replica leaves the other answering; killing Redis leaves the service answering when it fails
open (the default) and answering 503 ``RATE_LIMIT_UNAVAILABLE`` when configured to fail
closed, and recovering once Redis is back; ``down`` then ``up`` keeps every rating (named
volume) and the second ``train`` finds everything current.
"""

from __future__ import annotations

import functools
import re
import time
from pathlib import Path
from typing import Any

from dockercheck.compose import PORTS, Project, free_port_range
from dockercheck.engine import CheckFailed
from dockercheck.graphql import Client
from dockercheck.image import SOURCE_MOUNT, memory_mb, published_url, running, wait_healthy

READY_TIMEOUT = 600.0
SEARCH_TIMEOUT = 300.0
PIXAR = (1, 3114, 4886, 6377, 8961)  # Toy Story 1-2, Monsters Inc., Finding Nemo, Incredibles
WRITES_PER_MINUTE = 10
RATINGS_SQL = "SELECT count(*) FROM ratings"
WORKER_FATE = re.compile(r"died|hung|Killed|Terminated|Traceback|Error|process \[\d+\]")
"""Log lines about worker processes starting, stopping and dying, and errors."""
WORKER_DIED = re.compile(r"Child process \[\d+\] died")
"""What uvicorn's supervisor logs when it replaces a worker that exited or stopped answering."""


def check_settings(tag: str) -> dict[str, str]:
    """The check's .env: .env.example's production settings with its own ports and tag."""
    first = free_port_range()
    return {
        "RECSYS_GQL_API_PORTS": f"127.0.0.1:{first}-{first + PORTS - 1}",
        "RECSYS_GQL_IMAGE_TAG": tag,
        "RECSYS_GQL_TRAIN_THREADS": "2",
        "RECSYS_GQL_WORKERS": "2",
        "RECSYS_GQL_ENV": "production",
        # Every request of the check comes from one address: reads are not what is tested.
        "RECSYS_GQL_RATE_LIMIT_READS": "1000/minute",
        "RECSYS_GQL_RATE_LIMIT_WRITES": f"{WRITES_PER_MINUTE}/minute",
        "RECSYS_GQL_RATE_LIMIT_FAIL_OPEN": "true",
        "RECSYS_GQL_DATA_SOURCE": SOURCE_MOUNT,
    }


def override_variables(source: Path, postgres: str, redis: str) -> dict[str, str]:
    """What docker/check/compose.check.yaml interpolates: the data copy and the stand-ins."""
    return {
        "RECSYS_GQL_CHECK_DATA_SOURCE": str(source),
        "RECSYS_GQL_CHECK_POSTGRES_IMAGE": postgres,
        "RECSYS_GQL_CHECK_REDIS_IMAGE": redis,
    }


class Stack:
    """The running project and a client per api replica."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.docker = project.docker
        self.replicas: list[str] = []
        self.clients: list[Client] = []

    def up(self) -> dict[str, float]:
        """``up`` and wait for both replicas to be ready and healthy; seconds of each part."""
        started = time.monotonic()
        try:
            self.project.up()
        except CheckFailed as failure:
            raise CheckFailed(f"{failure}\n{self.train_log_tail()}") from failure
        up_seconds = time.monotonic() - started
        train = self.docker.inspect("container", self.project.containers("train")[0])
        assert train is not None
        if train["State"]["ExitCode"] != 0:
            raise CheckFailed(f"train exited {train['State']['ExitCode']}\n{self.train_log_tail()}")
        self.find_replicas()
        if len(self.replicas) != 2:
            raise CheckFailed(f"expected 2 api replicas, found {self.replicas}")
        self.wait_ready()
        healthy = [wait_healthy(self.docker, name, started) for name in self.replicas]
        return {
            "up_seconds": round(up_seconds, 1),
            "ready_seconds": round(time.monotonic() - started, 1),
            "healthy_seconds": round(max(healthy), 1),
        }

    def train_log_tail(self, lines: int = 30) -> str:
        """The end of the one-shot ``train``'s output: why it failed, in CI's log too."""
        logs = self.project.run("logs", "--no-log-prefix", "--tail", str(lines), "train",
                                check=False)  # fmt: skip
        return "train's last lines:\n" + logs.rstrip()

    def api_diagnosis(self, lines: int = 12) -> str:
        """Each api replica's state (restarts, exit code, OOM kill) and the lines of its log
        that tell a worker's fate (uvicorn's supervisor reports a worker it found dead or
        hung), then its last ``lines``: why a replica stopped answering, in CI's log too."""
        parts = []
        for name in self.project.containers("api"):
            found = self.docker.inspect("container", name) or {}
            state = found.get("State", {})
            parts.append(
                f"{name}: {state.get('Status')}, restarts {found.get('RestartCount')}, "
                f"exit code {state.get('ExitCode')}, OOM-killed {state.get('OOMKilled')}"
            )
            text = self.log_lines(name)
            fates = [line for line in text if WORKER_FATE.search(line)]
            parts += [f"  {line}" for line in fates[-20:]]
            parts += ["  ..."] + [f"  {line}" for line in text[-lines:]]
        return "api replicas:\n" + "\n".join(parts)

    def log_lines(self, container: str) -> list[str]:
        """Everything ``container`` has written (stdout and stderr) since it was created."""
        log = self.docker.run("logs", container, check=False, quiet=True)
        return (log.stdout + log.stderr).splitlines()

    def find_replicas(self) -> None:
        """The api containers and a client on each one's published port.

        Asked again after any restart: a replica started again may come back on another port
        of ``RECSYS_GQL_API_PORTS`` (a load balancer reaches them as ``api:8000`` instead).
        """
        self.replicas = self.project.containers("api")
        self.clients = [Client(published_url(self.docker, name)) for name in self.replicas]

    def wait_ready(self) -> None:
        """Until every replica's /readyz is 200."""
        for name, client in zip(self.replicas, self.clients, strict=True):
            client.wait_ready(READY_TIMEOUT, functools.partial(running, self.docker, name))

    def ratings_in_database(self) -> int:
        """``count(*)`` of the ratings table, asked inside the postgres container."""
        out = self.project.run(
            "exec", "-T", "postgres", "psql", "-U", "recsys", "-d", "recsys", "-tAc", RATINGS_SQL
        )
        return int(out.strip())

    def rating_crosses_replicas(self) -> dict[str, Any]:
        """Ratings written through A change B's next recommendations for that user."""
        a, b = self.clients
        user, token = a.sign_up()
        count_before, before = b.recommendations(user)
        for movie in PIXAR:
            saved = a.rate(token, user, movie, 5.0)
            if saved.body.get("data", {}).get("rateMovie", {}).get("__typename") != "RatingSaved":
                raise CheckFailed(f"rating through replica A refused: {saved}")
        count_after, after = b.recommendations(user)
        if (count_before, count_after) != (0, len(PIXAR)) or after == before:
            raise CheckFailed(
                f"replica B did not see replica A's ratings: {count_before}->{count_after} "
                f"ratings, recommendations {before} -> {after}"
            )
        self.user, self.recommended = user, after
        return {"user": user, "before": before, "after": after}

    def limit_holds_across_replicas(self) -> dict[str, Any]:
        """``WRITES_PER_MINUTE`` writes pass, alternating replicas; the next is refused on both."""
        user, token = self.clients[0].sign_up()
        statuses = []
        for index in range(WRITES_PER_MINUTE + 2):
            client = self.clients[index % 2]
            statuses.append(client.rate(token, user, PIXAR[index % len(PIXAR)], 4.0).status)
        refused = statuses[WRITES_PER_MINUTE:]
        if statuses[:WRITES_PER_MINUTE] != [200] * WRITES_PER_MINUTE or refused != [429, 429]:
            raise CheckFailed(f"write limit across replicas: statuses {statuses}")
        self.throttled = (user, token)
        return {"statuses": statuses}

    def replica_killed(self) -> dict[str, Any]:
        """``docker kill`` replica A: B keeps answering; A is started again afterwards."""
        a_name, b = self.replicas[0], self.clients[1]
        self.docker.run("kill", a_name)
        answers = [b.post("{ movie(id: 1) { title } }").status for _ in range(5)]
        state = self.docker.inspect("container", a_name)
        assert state is not None
        restarted = bool(state["State"]["Running"])
        if answers != [200] * 5:
            raise CheckFailed(f"replica B with A killed answered {answers}")
        self.docker.run("start", a_name)
        port_before = self.clients[0].url
        self.find_replicas()
        self.wait_ready()
        return {
            "b_statuses": answers,
            "a_restarted_by_docker": restarted,
            "a_port": f"{port_before} -> {self.clients[0].url}",
        }

    def redis_killed(self, fail_open: bool) -> dict[str, Any]:
        """``docker kill`` Redis: answered unthrottled (fail-open) or 503 (fail-closed)."""
        (redis,) = self.project.containers("redis")
        user, token = self.throttled
        self.docker.run("kill", redis)
        try:
            reads = [c.post("{ movie(id: 1) { title } }") for c in self.clients]
            write = self.clients[1].rate(token, user, PIXAR[0], 3.5)
        finally:
            self.docker.run("start", redis)
        seen = [(r.status, r.code) for r in [*reads, write]]
        expected = [(200, None)] * 3 if fail_open else [(503, "RATE_LIMIT_UNAVAILABLE")] * 3
        if seen != expected:
            raise CheckFailed(f"Redis killed, fail_open={fail_open}: answers {seen}")
        recovered = self.recovered_after_redis()
        return {"fail_open": fail_open, "answers": seen, "recovered_seconds": recovered}

    def recovered_after_redis(self, timeout: float = 120.0) -> float:
        """Seconds until both replicas answer 200 again with Redis back."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            statuses = [c.post("{ movie(id: 1) { title } }").status for c in self.clients]
            if statuses == [200, 200]:
                return round(time.monotonic() - started, 1)
            time.sleep(1)
        raise CheckFailed("the replicas did not recover after Redis came back")

    def fail_closed(self) -> None:
        """Recreate the replicas with ``RECSYS_GQL_RATE_LIMIT_FAIL_OPEN=false``."""
        self.project.settings["RECSYS_GQL_RATE_LIMIT_FAIL_OPEN"] = "false"
        self.project.write_env()
        self.project.up()
        self.find_replicas()
        self.wait_ready()

    def memory(self) -> dict[str, list[float]]:
        """Each replica's memory (MB) once it answered a search (the sentence model loaded),
        and the seconds until that first search was answered."""
        waited = [round(client.first_search(SEARCH_TIMEOUT), 1) for client in self.clients]
        return {
            "first_search_seconds": waited,
            "memory_mb": [memory_mb(self.docker, name) for name in self.replicas],
        }

    def no_worker_died(self) -> dict[str, int]:
        """No worker of either replica was found dead or hung, and killed and replaced by
        uvicorn's supervisor (which logs ``Child process [pid] died``): its requests in flight
        were dropped unanswered. Returns how many lines each replica's log has."""
        lines = {}
        for name in self.replicas:
            text = self.log_lines(name)
            died = [line for line in text if WORKER_DIED.search(line)]
            if died:
                raise CheckFailed(f"{name}: uvicorn replaced a worker: {died[:5]}")
            lines[name] = len(text)
        return lines

    def down_up_keeps_ratings(self) -> dict[str, Any]:
        """``down`` + ``up``: the same ratings in the database and the same answers for them."""
        count = self.ratings_in_database()
        self.project.down()
        timings = self.up()
        after = self.ratings_in_database()
        ratings, recommended = self.clients[1].recommendations(self.user)
        if after != count or ratings != len(PIXAR) or recommended != self.recommended:
            raise CheckFailed(
                f"after down + up: {after} ratings (had {count}); user {self.user}: {ratings} "
                f"ratings, recommendations {recommended} (had {self.recommended})"
            )
        train_log = self.project.run("logs", "--no-log-prefix", "train")
        return {"ratings": count, "second_up": timings, "train_log_tail": train_log[-600:]}
