"""Prometheus metrics of real ``recsys-gql serve`` processes: scraped by a real Prometheus
server (Debian's ``prometheus``) and parsed with prometheus-client's parser, on the separate
metrics port in production, and summed over two workers in one scrape."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from bench.serve_harness import free_port
from recsys_gql.settings import Settings
from tests.processes import metric, post, scrape, served_process, wait_for_metric, wait_ready

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
RECS = "query Recs { recommendations(userId: 1, first: 5) { movie { id } } }"
NO_LIMITS = {
    "RECSYS_GQL_RATE_LIMIT_READS": "100000/minute",
    "RECSYS_GQL_RATE_LIMIT_WRITES": "100000/minute",
    "RECSYS_GQL_PRELOAD_SEARCH_MODEL": "false",
}


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but the prometheus binary is missing (apt-get install prometheus)")
        pytest.skip("the prometheus binary is not installed (apt-get install prometheus)")
    return found


def query_prometheus(url: str, expression: str, timeout: float = 90) -> float:
    """Poll Prometheus's HTTP API until ``expression`` has a result; its value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            body = httpx.get(f"{url}/api/v1/query", params={"query": expression}, timeout=5).json()
            if body.get("status") == "success" and body["data"]["result"]:
                return float(body["data"]["result"][0]["value"][1])
        except httpx.HTTPError:
            pass  # still starting
        if time.monotonic() > deadline:
            pytest.fail(f"Prometheus never had a result for {expression}")
        time.sleep(0.5)


@SQLITE_ONLY
def test_prometheus_scrapes_the_metrics_port_in_production(
    api_settings: Settings, tmp_path: Path
) -> None:
    binary = prometheus_binary()
    metrics_port = free_port()
    env = {
        **NO_LIMITS,
        "RECSYS_GQL_ENV": "production",
        "RECSYS_GQL_METRICS_PORT": str(metrics_port),
    }
    log = tmp_path / "server.log"
    with served_process(api_settings, env, log) as url:
        wait_ready([url], [log])
        run_id = httpx.get(f"{url}/readyz", timeout=10).json()["run"]
        for _ in range(5):
            assert post(url, RECS).status_code == 200
        assert post(url, "{ nope").status_code == 400  # GRAPHQL_PARSE_FAILED
        signed = post(url, "mutation { signUp { token user { id } } }").json()["data"]["signUp"]
        rated = post(
            url,
            "mutation ($u: Int!) { rateMovie(input: {userId: $u, movieId: 1, rating: 4}) "
            "{ __typename } }",
            {"u": signed["user"]["id"]},
            token=signed["token"],
        ).json()
        assert rated["data"]["rateMovie"]["__typename"] == "RatingSaved"

        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 404  # not public here
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        samples = scrape(metrics_url)
        requests = "recsys_gql_requests_total"
        assert metric(samples, requests, route="/graphql", operation="Recs", outcome="ok") == 5
        assert metric(samples, "recsys_gql_graphql_errors_total", code="GRAPHQL_PARSE_FAILED") == 1
        assert metric(samples, "recsys_gql_artifact_run_info", run_id=run_id) == 1
        memo = "recsys_gql_recommendation_memo_lookups_total"
        assert metric(samples, memo, result="miss") == 1  # then the same answer four times
        assert metric(samples, memo, result="hit") == 4
        stage = "recsys_gql_engine_stage_duration_seconds_count"
        assert metric(samples, stage, stage="rank", arm="-") == 1
        assert metric(samples, stage, stage="arm", arm="als") == 1
        assert metric(samples, "recsys_gql_rating_writer_batch_size_count") == 1
        assert metric(samples, "recsys_gql_rating_writer_commit_duration_seconds_count") == 1
        assert metric(samples, "recsys_gql_rate_limit_spent_total", bucket="read") >= 5
        # two mutations: signUp and rateMovie
        assert metric(samples, "recsys_gql_rate_limit_spent_total", bucket="write") == 2
        assert metric(samples, "recsys_gql_query_cost_count") >= 6

        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: recsys-gql\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
        )
        prometheus_port = free_port()
        with (tmp_path / "prometheus.log").open("wb") as prometheus_log:
            prometheus = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                ],
                stdout=prometheus_log,
                stderr=subprocess.STDOUT,
            )
        try:
            api = f"http://127.0.0.1:{prometheus_port}"
            scraped = query_prometheus(
                api, 'recsys_gql_requests_total{route="/graphql",operation="Recs",outcome="ok"}'
            )
            assert scraped == 5
            assert query_prometheus(api, 'up{job="recsys-gql"}') == 1
            assert query_prometheus(api, f'recsys_gql_artifact_run_info{{run_id="{run_id}"}}') == 1
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=30)


@SQLITE_ONLY
def test_two_workers_are_summed_in_one_scrape(api_settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    env = {**NO_LIMITS, "RECSYS_GQL_WORKERS": "2"}
    with served_process(api_settings, env, log) as url:
        wait_ready([url], [log])
        run_id = httpx.get(f"{url}/readyz", timeout=10).json()["run"]
        wait_for_metric(f"{url}/metrics", "recsys_gql_artifact_run_info", 2, run_id=run_id)
        count = 40
        for user in range(1, count + 1):  # a new connection each: they spread over the workers
            query = "query Count($u: Int!) { recommendations(userId: $u, first: 3) { score } }"
            assert post(url, query, {"u": user}).status_code == 200
        stats: dict[int, dict[str, int]] = {}
        for _ in range(64):  # each new connection lands on some worker
            answer = httpx.get(f"{url}/stats", timeout=10).json()
            stats[answer["pid"]] = answer["recommendation_memo"]
            if len(stats) == 2:
                break
        samples = scrape(f"{url}/metrics")
    assert len(stats) == 2, "one worker answered every connection"
    requests = "recsys_gql_requests_total"
    assert metric(samples, requests, route="/graphql", operation="Count", outcome="ok") == count
    memo = "recsys_gql_recommendation_memo_lookups_total"
    # /stats shows each worker's own counts; /metrics their sum
    assert metric(samples, memo, result="miss") == sum(s["misses"] for s in stats.values())
    assert metric(samples, memo, result="hit") == sum(s["hits"] for s in stats.values())
    assert metric(samples, memo, result="miss") == count
    assert all(s["misses"] > 0 for s in stats.values()), "both workers served requests"
