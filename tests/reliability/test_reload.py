"""Reload without downtime, on real ``recsys-gql serve`` processes: ``SIGHUP`` switches every
worker to the run ``artifacts/current`` points at while clients keep asking (not one request
fails), ``/readyz`` and ``health`` name the new run, a damaged run is refused while the old
one keeps serving, and the old run's memory is given back."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from bench.runs import clone_run, damage_run
from recsys_gql.artifacts import publish
from recsys_gql.settings import Settings
from tests.conftest import RealRun
from tests.processes import metric, post, scrape, server_process, wait_for_metric, wait_ready

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
RECS = "query ($u: Int!) { recommendations(userId: $u, first: 10) { movie { id title } } }"
HEALTH = "{ health { runId } }"
RUN_INFO = "recsys_gql_artifact_run_info"
RELOADS = "recsys_gql_reloads_total"


def env_for(root: Path, workers: int, **extra: str) -> dict[str, str]:
    return {
        "RECSYS_GQL_ARTIFACTS_DIR": str(root),
        "RECSYS_GQL_WORKERS": str(workers),
        "RECSYS_GQL_RATE_LIMIT_READS": "10000000/minute",
        "RECSYS_GQL_PRELOAD_SEARCH_MODEL": "false",
        **extra,
    }


def first_run(real_run: RealRun, root: Path) -> str:
    """``root`` with run ``run-a`` (a copy of the session's trained run) as ``current``."""
    publish(clone_run(real_run.current, root, "run-a"), root)
    return "run-a"


def reload_to(process_pid: int, root: Path, source: Path, run_id: str) -> Path:
    """Publish a copy of ``source`` as ``run_id`` and signal the server."""
    run = clone_run(source, root, run_id)
    publish(run, root)
    os.kill(process_pid, signal.SIGHUP)
    return run


def worker_rss_mb(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * 4096 / 2**20


class Clients:
    """Threads asking for recommendations in a loop, each on its own keep-alive connection,
    recording every answer that is not a 200 without errors."""

    def __init__(self, url: str, threads: int) -> None:
        self.url = url
        self.answers = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, args=(n,), daemon=True) for n in range(threads)
        ]

    def _loop(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = post(self.url, RECS, {"u": rng.randint(1, 610)}, client=client)
                    problem = (
                        None
                        if response.status_code == 200 and "errors" not in response.json()
                        else f"{response.status_code} {response.text[:200]}"
                    )
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self.answers += 1
                    if problem is not None:
                        self.failures.append(problem)

    def wait_for(self, answers: int, timeout: float = 120) -> int:
        """Block until ``answers`` have come back in all; how many have."""
        deadline = time.monotonic() + timeout
        while self.answers < answers:
            if time.monotonic() > deadline:
                pytest.fail(f"only {self.answers} answers of {answers} in {timeout:.0f} s")
            time.sleep(0.05)
        return self.answers

    def __enter__(self) -> Clients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


@SQLITE_ONLY
@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_switches_every_worker_with_no_failed_request(
    api_settings: Settings, real_run: RealRun, tmp_path: Path, workers: int
) -> None:
    root = tmp_path / "artifacts"
    old = first_run(real_run, root)
    log = tmp_path / "server.log"
    with server_process(api_settings, env_for(root, workers), log) as (url, process):
        wait_ready([url], [log])
        wait_for_metric(f"{url}/metrics", RUN_INFO, workers, run_id=old)
        with Clients(url, threads=4) as clients:
            clients.wait_for(8)  # answered before the signal
            reload_to(process.pid, root, real_run.current, "run-b")
            wait_for_metric(f"{url}/metrics", RUN_INFO, workers, run_id="run-b")
            switched = clients.answers
            clients.wait_for(switched + 8)  # and after every worker switched
        samples = scrape(f"{url}/metrics")
        ready = httpx.get(f"{url}/readyz", timeout=10).json()
        health = post(url, HEALTH).json()["data"]["health"]
    assert clients.failures == []
    assert metric(samples, RUN_INFO, run_id=old) == 0
    assert metric(samples, RELOADS, outcome="loaded") == workers
    assert ready == {"status": "ready", "run": "run-b"}
    assert health["runId"] == "run-b"


@SQLITE_ONLY
def test_damaged_run_is_refused_and_memory_returns_after_reloads(
    api_settings: Settings, real_run: RealRun, tmp_path: Path
) -> None:
    root = tmp_path / "artifacts"
    first_run(real_run, root)
    model_mb = sum(p.stat().st_size for p in real_run.current.resolve().iterdir()) / 2**20
    log = tmp_path / "server.log"
    # a short request timeout: an old run is let go that long after a switch
    env = env_for(root, 1, RECSYS_GQL_REQUEST_TIMEOUT_SECONDS="2")
    with server_process(api_settings, env, log) as (url, process):
        wait_ready([url], [log])
        for user in range(1, 30):  # warm: the memo and the allocator as when serving
            assert post(url, RECS, {"u": user}).status_code == 200
        rss_before = worker_rss_mb(process.pid)
        for number, run_id in enumerate(("run-b", "run-c"), start=1):
            reload_to(process.pid, root, real_run.current, run_id)
            wait_for_metric(f"{url}/metrics", RELOADS, number, outcome="loaded")
            for user in range(1, 30):
                assert post(url, RECS, {"u": user}).status_code == 200
        time.sleep(5)  # past the request timeout: run-a and run-b are let go
        rss_after = worker_rss_mb(process.pid)

        damaged = clone_run(real_run.current, root, "run-d")
        broken = damage_run(damaged)
        publish(damaged, root)
        process.send_signal(signal.SIGHUP)
        samples = wait_for_metric(f"{url}/metrics", RELOADS, 1, outcome="refused")
        health = post(url, HEALTH).json()["data"]["health"]
        ready = httpx.get(f"{url}/readyz", timeout=10)
        answered = post(url, RECS, {"u": 7})
    # Two more models were loaded; holding either would add about a model's size.
    assert rss_after - rss_before < 0.5 * model_mb, (rss_before, rss_after, model_mb)
    assert metric(samples, RUN_INFO, run_id="run-c") == 1
    assert metric(samples, RUN_INFO, run_id="run-d") == 0
    assert health["runId"] == "run-c"
    assert ready.status_code == 200
    assert ready.json()["run"] == "run-c"
    assert answered.status_code == 200
    assert "errors" not in answered.json()
    text = log.read_text()
    assert "reload refused, still serving run run-c" in text
    assert broken in text  # the log names the damaged file
