"""Real server processes for tests that need more than one: start, wait until ready, post,
and fire bursts of concurrent requests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from bench.serve_harness import free_port, serve_command
from recsys_gql.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379"
READ = "{ genres }"


def post(
    url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    client: httpx.Client | None = None,
    forwarded_for: str | None = None,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    payload = {"query": query, "variables": variables or {}}
    if client is not None:
        return client.post(f"{url}/graphql", json=payload, headers=headers)
    return httpx.post(f"{url}/graphql", json=payload, headers=headers, timeout=30)


async def _burst(urls: list[str], count: int, query: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return list(
            await asyncio.gather(
                *(
                    client.post(f"{urls[i % len(urls)]}/graphql", json={"query": query})
                    for i in range(count)
                )
            )
        )


def burst(urls: list[str], count: int, query: str = READ) -> list[httpx.Response]:
    """``count`` requests at once (spread over ``urls``), all in flight together."""
    return asyncio.run(_burst(urls, count, query))


def require_redis() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        message = f"Redis is not reachable at {REDIS_URL} ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    return client


@contextmanager
def served_process(settings: Settings, env: dict[str, str], log_path: Path) -> Iterator[str]:
    """A real ``recsys-gql serve`` process on a free port, until the block exits."""
    with server_process(settings, env, log_path) as (url, _):
        yield url


@contextmanager
def server_process(
    settings: Settings, env: dict[str, str], log_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`served_process`, with the process (to signal it)."""
    port = free_port()
    full_env = {
        **os.environ,
        "RECSYS_GQL_ARTIFACTS_DIR": str(settings.artifacts_dir),
        "RECSYS_GQL_DATA_DIR": str(settings.data_dir),
        "RECSYS_GQL_DATABASE_URL": settings.database_url,
        "RECSYS_GQL_GRAPHIQL": "false",
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            serve_command(port),
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_path.parent,
        )
        try:
            yield f"http://127.0.0.1:{port}", process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def wait_ready(urls: list[str], logs: list[Path], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    pending = list(zip(urls, logs, strict=True))
    while pending:
        url, log = pending[0]
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                pending.pop(0)
                continue
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url} was not ready in {timeout:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.25)


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``url`` (a ``/metrics`` address), parsed by prometheus-client's own
    parser, by name and labels."""
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(url, timeout=30)
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def metric(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:  # fmt: skip
    """The value of the sample ``name`` with exactly ``labels`` (0 when absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for_metric(
    url: str, name: str, expected: float, timeout: float = 120, **labels: str
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Scrape ``url`` until the sample ``name{labels}`` equals ``expected``; the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        if metric(samples, name, **labels) == expected:
            return samples
        if time.monotonic() > deadline:
            found = {k: v for k, v in samples.items() if k[0] == name}
            pytest.fail(f"{name}{labels} never reached {expected}: {found}")
        time.sleep(0.25)
