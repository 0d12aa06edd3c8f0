"""Throttling through real HTTP: exactness under 100 parallel reads (in one process with
``memory://`` and across two ``recsys-gql serve`` processes sharing Redis), writes spent per
mutation field, separate read and write buckets, ``X-Forwarded-For`` only from trusted proxies,
and both answers to a Redis outage. Plus the pure parts (operation cost, client address,
settings) without a server.

Every server-backed test runs on the SQLite database only: the limiter never touches it.
"""

from __future__ import annotations

import ipaddress
import logging
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import parse
from pydantic import ValidationError

from recsys_gql.api.extensions.throttling import operation_charge, root_fields
from recsys_gql.api.limiter import Bucket, client_address
from recsys_gql.settings import Settings
from tests.api.conftest import Server, running, sign_up
from tests.processes import (
    READ,
    REDIS_URL,
    burst,
    free_port,
    post,
    require_redis,
    served_process,
    wait_ready,
)

RATINGS = """query ($u: Int!) { user(id: $u) { ratings(first: 100) {
  edges { node { rating movie { id } } } } } }"""
THREE_ALIASED_WRITES = """mutation ($u: Int!) {
  a: rateMovie(input: {userId: $u, movieId: 1, rating: 4.0}) { __typename }
  b: rateMovie(input: {userId: $u, movieId: 2, rating: 3.0}) { __typename }
  c: rateMovie(input: {userId: $u, movieId: 3, rating: 2.0}) { __typename }
}"""
TWO_WRITES_ONE_IN_A_FRAGMENT = """mutation ($u: Int!) {
  a: rateMovie(input: {userId: $u, movieId: 1, rating: 4.0}) { __typename }
  ...more
}
fragment more on Mutation {
  b: rateMovie(input: {userId: $u, movieId: 2, rating: 3.0}) { __typename }
}"""
ONE_WRITE = """mutation ($u: Int!) {
  rateMovie(input: {userId: $u, movieId: 3, rating: 2.0}) { __typename } }"""
SIGN_UP = "mutation { signUp { token } }"

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


# --- helpers ---------------------------------------------------------------------------------


def assert_allowed(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()
    assert response.headers["X-RateLimit-Limit"] == str(limit)
    assert 0 <= int(response.headers["X-RateLimit-Remaining"]) < limit
    assert 1 <= int(response.headers["X-RateLimit-Reset"]) <= 60


def assert_throttled(
    response: httpx.Response, limit: int, remaining: int = 0, cost: int = 1
) -> None:
    """HTTP 429, the rate-limit headers (nothing spent), and a coded GraphQL error naming what
    the operation would have spent, with nothing executed."""
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert response.headers["X-RateLimit-Limit"] == str(limit)
    assert response.headers["X-RateLimit-Remaining"] == str(remaining)
    assert 1 <= int(response.headers["X-RateLimit-Reset"]) <= 60
    assert response.headers["X-RateLimit-Cost"] == "0"
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfter": retry_after, "cost": cost}
    assert "limit is" in error["message"]


def ratings_of(server: Server, user: int) -> dict[int, float]:
    edges = server.graphql(RATINGS, {"u": user})["data"]["user"]["ratings"]["edges"]
    return {e["node"]["movie"]["id"]: e["node"]["rating"] for e in edges}


# --- the pure parts --------------------------------------------------------------------------


def test_a_mutation_spends_a_write_per_executed_root_field() -> None:
    def cost(text: str, variables: dict[str, Any] | None = None) -> tuple[Bucket, int]:
        return operation_charge(parse(text), None, variables, 0, 100)

    assert cost(READ) == (Bucket.READ, 1)
    assert cost("{ a: genres b: genres c: movie(id: 1) { title } }") == (Bucket.READ, 1)
    assert cost(THREE_ALIASED_WRITES) == (Bucket.WRITE, 3)
    assert cost(TWO_WRITES_ONE_IN_A_FRAGMENT) == (Bucket.WRITE, 2)
    assert cost("mutation { ... on Mutation { a: signUp { token } b: signUp { token } } }") == (
        Bucket.WRITE,
        2,
    )
    assert cost("mutation { __typename }") == (Bucket.WRITE, 1)  # never free
    # one response key executes once (validation makes equal keys identical)
    assert cost("mutation { signUp { token } signUp { token } }") == (Bucket.WRITE, 1)
    skipped = "mutation ($s: Boolean!) { a: signUp { token } b: signUp @skip(if: $s) { token } }"
    assert cost(skipped, {"s": True}) == (Bucket.WRITE, 1)
    assert cost(skipped, {"s": False}) == (Bucket.WRITE, 2)
    assert cost("mutation { a: signUp @include(if: false) { token } b: signUp { token } }") == (
        Bucket.WRITE,
        1,
    )
    # the executed operation is the named one
    document = parse("query Q { genres } mutation M { a: signUp { token } b: signUp { token } }")
    assert operation_charge(document, "Q", None, 0, 100) == (Bucket.READ, 1)
    assert operation_charge(document, "M", None, 0, 100) == (Bucket.WRITE, 2)
    assert root_fields(document, "M", None) == ["a", "b"]
    # a fragment cycle (refused by validation anyway) cannot loop
    cyclic = parse("mutation { ...f } fragment f on Mutation { signUp { token } ...f }")
    assert root_fields(cyclic, None, None) == ["signUp"]


def test_a_query_spends_a_read_per_cost_per_read_units_rounded_up() -> None:
    document = parse("{ genres }")
    assert operation_charge(document, None, None, 0, 100) == (Bucket.READ, 1)  # never free
    assert operation_charge(document, None, None, 100, 100) == (Bucket.READ, 1)
    assert operation_charge(document, None, None, 101, 100) == (Bucket.READ, 2)
    assert operation_charge(document, None, None, 10_000, 100) == (Bucket.READ, 100)
    # a mutation's selection does not change its writes
    mutation = parse("mutation { signUp { token } }")
    assert operation_charge(mutation, None, None, 10_000, 100) == (Bucket.WRITE, 1)


def test_forwarded_for_names_the_client_only_behind_a_trusted_proxy() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.2/32")]
    # an untrusted peer is the client, whatever it claims
    assert client_address("198.51.100.7", ["203.0.113.1"], proxies) == "198.51.100.7"
    assert client_address("198.51.100.7", ["203.0.113.1"], []) == "198.51.100.7"
    # a trusted proxy: the right-most hop that is not a proxy; spoofed hops to its left are moot
    assert client_address("127.0.0.2", ["203.0.113.1"], proxies) == "203.0.113.1"
    assert client_address("127.0.0.2", ["6.6.6.6, 203.0.113.1, 10.1.2.3"], proxies) == (
        "203.0.113.1"
    )
    assert client_address("127.0.0.2", ["6.6.6.6", "203.0.113.1"], proxies) == "203.0.113.1"
    # nothing usable: the last address a trusted proxy vouched for
    assert client_address("127.0.0.2", [], proxies) == "127.0.0.2"
    assert client_address("127.0.0.2", ["garbage"], proxies) == "127.0.0.2"
    assert client_address("127.0.0.2", ["203.0.113.1, garbage, 10.0.0.9"], proxies) == "10.0.0.9"
    assert client_address("127.0.0.2", ["10.0.0.1, 10.0.0.9"], proxies) == "10.0.0.1"
    # IPv6, IPv4-mapped peers, and no peer at all
    assert client_address("::ffff:198.51.100.7", ["203.0.113.1"], proxies) == "198.51.100.7"
    assert client_address("2001:db8::1", [], proxies) == "2001:db8::1"
    assert client_address(None, ["203.0.113.1"], proxies) == "unknown"


def test_settings_defaults_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert (defaults.rate_limit_reads, defaults.rate_limit_writes) == ("30/minute", "10/minute")
    assert defaults.rate_limit_storage == "memory://"
    assert defaults.rate_limit_fail_open is True
    assert defaults.trusted_proxies == ()
    monkeypatch.setenv("RECSYS_GQL_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.2")
    monkeypatch.setenv("RECSYS_GQL_RATE_LIMIT_STORAGE", REDIS_URL)
    monkeypatch.setenv("RECSYS_GQL_RATE_LIMIT_FAIL_OPEN", "false")
    configured = Settings()
    assert [str(n) for n in configured.trusted_proxies] == ["10.0.0.0/8", "127.0.0.2/32"]
    assert configured.rate_limit_storage == REDIS_URL
    assert configured.rate_limit_fail_open is False
    monkeypatch.setenv("RECSYS_GQL_TRUSTED_PROXIES", '["::1"]')
    assert [str(n) for n in Settings().trusted_proxies] == ["::1/128"]
    for bad in (
        {"rate_limit_reads": "lots"},
        {"rate_limit_writes": "10/minute;1/second"},
        {"rate_limit_storage": "mongodb://localhost"},
        {"trusted_proxies": "proxy.example"},
    ):
        with pytest.raises(ValidationError):
            Settings(**bad)  # type: ignore[arg-type]


# --- one process, memory storage ------------------------------------------------------------


@SQLITE_ONLY
def test_100_parallel_reads_against_5_per_minute_allow_exactly_5(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"rate_limit_reads": "5/minute"})
    with running(settings) as server:
        responses = burst([server.url], 100)
    allowed = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(allowed) == 5
    assert len(refused) == 95
    for response in allowed:
        assert_allowed(response, 5)
        assert response.json()["data"]["genres"]
    # hits are serialised per key, so each admitted request saw a distinct count
    assert sorted(int(r.headers["X-RateLimit-Remaining"]) for r in allowed) == [0, 1, 2, 3, 4]
    for response in refused:
        assert_throttled(response, 5)


@SQLITE_ONLY
def test_every_mutation_field_spends_a_write_and_a_refused_request_writes_nothing(
    api_settings: Settings,
) -> None:
    settings = api_settings.model_copy(update={"rate_limit_writes": "2/minute"})
    with running(settings) as server:
        user, token = sign_up(server)  # one write from this IP (anonymous)
        variables = {"u": user}

        too_many = post(server.url, THREE_ALIASED_WRITES, variables, token=token)
        assert_throttled(too_many, 2, remaining=2, cost=3)  # refused whole: nothing spent
        assert "spends 3 writes" in too_many.json()["errors"][0]["message"]
        assert ratings_of(server, user) == {}  # and nothing written

        both = post(server.url, TWO_WRITES_ONE_IN_A_FRAGMENT, variables, token=token)
        assert both.status_code == 200, both.text
        assert both.json()["data"] == {
            "a": {"__typename": "RatingSaved"},
            "b": {"__typename": "RatingSaved"},
        }
        assert both.headers["X-RateLimit-Remaining"] == "0"

        assert_throttled(post(server.url, ONE_WRITE, variables, token=token), 2)
        assert ratings_of(server, user) == {1: 4.0, 2: 3.0}

        # the user's writes were keyed by the user: this IP still has one anonymous write
        assert_allowed(post(server.url, SIGN_UP), 2)
        assert_throttled(post(server.url, SIGN_UP), 2)


@SQLITE_ONLY
def test_reads_and_writes_are_separate_buckets(api_settings: Settings) -> None:
    settings = api_settings.model_copy(
        update={"rate_limit_reads": "2/minute", "rate_limit_writes": "3/minute"}
    )
    with running(settings) as server:
        assert_allowed(post(server.url, READ), 2)
        assert_allowed(post(server.url, READ), 2)
        assert_throttled(post(server.url, READ), 2)
        # reads are spent; writes are not
        first = post(server.url, SIGN_UP)
        assert_allowed(first, 3)
        assert first.headers["X-RateLimit-Remaining"] == "2"
        assert_allowed(post(server.url, SIGN_UP), 3)
        assert_allowed(post(server.url, SIGN_UP), 3)
        assert_throttled(post(server.url, SIGN_UP), 3)
        assert_throttled(post(server.url, READ), 2)


# --- X-Forwarded-For ------------------------------------------------------------------------
# The client connects from 127.0.0.2: uvicorn's own proxy-header handling (on by default)
# trusts only 127.0.0.1 and ::1, so from this peer the app alone decides.


@SQLITE_ONLY
def test_forwarded_for_is_ignored_from_an_untrusted_peer(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"rate_limit_reads": "1/minute"})
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with running(settings) as server, httpx.Client(transport=transport, timeout=30) as client:
        assert_allowed(post(server.url, READ, client=client, forwarded_for="203.0.113.1"), 1)
        # claiming to be someone else does not buy a fresh allowance
        for claimed in ("203.0.113.2", "198.51.100.9, 203.0.113.3"):
            assert_throttled(post(server.url, READ, client=client, forwarded_for=claimed), 1)
        assert_throttled(post(server.url, READ, client=client), 1)


@SQLITE_ONLY
def test_forwarded_for_is_honoured_from_a_trusted_proxy(api_settings: Settings) -> None:
    settings = api_settings.model_copy(
        update={
            "rate_limit_reads": "1/minute",
            "trusted_proxies": (ipaddress.ip_network("127.0.0.2/32"),),
        }
    )
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with running(settings) as server, httpx.Client(transport=transport, timeout=30) as client:
        for address in ("203.0.113.1", "203.0.113.2"):  # two clients behind the proxy
            assert_allowed(post(server.url, READ, client=client, forwarded_for=address), 1)
        # the right-most untrusted hop is the client: a spoofed left-most entry changes nothing
        spoofed = "198.51.100.9, 203.0.113.1"
        assert_throttled(post(server.url, READ, client=client, forwarded_for=spoofed), 1)
        # the proxy's own requests (no header) are its own client
        assert_allowed(post(server.url, READ, client=client), 1)


# --- Redis ------------------------------------------------------------------------------------


@SQLITE_ONLY
def test_redis_storage_is_exact_across_two_server_processes(
    api_settings: Settings, tmp_path: Path
) -> None:
    store = require_redis()
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    env = {
        "RECSYS_GQL_RATE_LIMIT_STORAGE": REDIS_URL,
        "RECSYS_GQL_RATE_LIMIT_KEY_PREFIX": prefix,
        "RECSYS_GQL_RATE_LIMIT_READS": "5/minute",
    }
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    try:
        with ExitStack() as stack:
            urls = [stack.enter_context(served_process(api_settings, env, log)) for log in logs]
            wait_ready(urls, logs)
            responses = burst(urls, 100)
        allowed = [r for r in responses if r.status_code == 200]
        assert len(allowed) == 5
        assert len([r for r in responses if r.status_code == 429]) == 95
        # both processes answered and refused: 5 shared between them, not 5 each
        for url in urls:
            assert any(r.status_code == 429 for r in responses if str(r.url).startswith(url))
        for response in responses:
            if response.status_code == 200:
                assert_allowed(response, 5)
            else:
                assert_throttled(response, 5)
        assert list(store.scan_iter(match=f"*{prefix}*"))  # the counts lived in Redis
    finally:
        for key in store.scan_iter(match=f"*{prefix}*"):
            store.delete(key)
        store.close()


@SQLITE_ONLY
def test_redis_down_fails_open_by_default_and_warns(
    api_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = api_settings.model_copy(
        update={
            "rate_limit_storage": f"redis://127.0.0.1:{free_port()}",  # nothing listens there
            "rate_limit_reads": "1/minute",
        }
    )
    assert settings.rate_limit_fail_open  # the default
    with (
        caplog.at_level(logging.WARNING, logger="recsys_gql.api.limiter"),
        running(settings) as server,
    ):
        for _ in range(3):  # over the limit, yet served: nothing can count
            response = post(server.url, READ)
            assert response.status_code == 200, response.text
            assert response.json()["data"]["genres"]
            assert "X-RateLimit-Limit" not in response.headers
    warnings = [r.getMessage() for r in caplog.records if r.name == "recsys_gql.api.limiter"]
    assert len(warnings) == 1  # once per outage, not once per request
    assert "unavailable" in warnings[0]
    assert "fail-open" in warnings[0]


@SQLITE_ONLY
def test_redis_down_fails_closed_with_a_coded_503(api_settings: Settings) -> None:
    settings = api_settings.model_copy(
        update={
            "rate_limit_storage": f"redis://127.0.0.1:{free_port()}",
            "rate_limit_fail_open": False,
        }
    )
    with running(settings) as server:
        for query in (READ, SIGN_UP):
            response = post(server.url, query)
            assert response.status_code == 503, response.text
            body = response.json()
            assert body["data"] is None
            [error] = body["errors"]
            assert error["extensions"] == {"code": "RATE_LIMIT_UNAVAILABLE"}
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
