"""Scale-out on the real backbone: two server processes on different ports share one
PostgreSQL database and one Redis. A rating written through one is served by the other on its
very next request, and a rate limit holds exactly across both."""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest

from recsys_gql.settings import Settings
from tests.processes import REDIS_URL, burst, post, require_redis, served_process, wait_ready

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
READ_LIMIT = 10
RECS = """query ($u: Int!) { recommendations(userId: $u, first: 10) {
  movie { id } explanation { because { id } } } }"""
RATE = """mutation ($u: Int!, $m: Int!) { rateMovie(input: {userId: $u, movieId: $m, rating: 5})
  { __typename } }"""
TOY_STORY = 1


@POSTGRES_ONLY
def test_two_replicas_share_ratings_and_rate_limits(api_settings: Settings, tmp_path: Path) -> None:
    store = require_redis()
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    env = {
        "RECSYS_GQL_RATE_LIMIT_STORAGE": REDIS_URL,
        "RECSYS_GQL_RATE_LIMIT_KEY_PREFIX": prefix,
        "RECSYS_GQL_RATE_LIMIT_READS": f"{READ_LIMIT}/minute",
        "RECSYS_GQL_RATE_LIMIT_WRITES": "100/minute",
        "RECSYS_GQL_PRELOAD_SEARCH_MODEL": "false",
    }
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    try:
        with ExitStack() as stack:
            a, b = (stack.enter_context(served_process(api_settings, env, log)) for log in logs)
            wait_ready([a, b], logs)
            assert a != b

            signed = post(a, "mutation { signUp { token user { id } } }").json()
            user = signed["data"]["signUp"]["user"]["id"]
            token = signed["data"]["signUp"]["token"]
            cold = post(b, RECS, {"u": user}).json()["data"]["recommendations"]  # read 1
            assert all(r["explanation"]["because"] == [] for r in cold)  # popularity

            saved = post(a, RATE, {"u": user, "m": TOY_STORY}, token=token).json()
            assert saved["data"]["rateMovie"]["__typename"] == "RatingSaved"

            warm = post(b, RECS, {"u": user}).json()["data"]["recommendations"]  # read 2
            assert [r["movie"]["id"] for r in warm] != [r["movie"]["id"] for r in cold]
            assert TOY_STORY not in {r["movie"]["id"] for r in warm}  # rated: excluded
            assert any(TOY_STORY in {m["id"] for m in r["explanation"]["because"]} for r in warm)

            responses = burst([a, b], 100)
        allowed = [r for r in responses if r.status_code == 200]
        throttled = [r for r in responses if r.status_code == 429]
        assert len(allowed) == READ_LIMIT - 2  # two reads were spent above, on B
        assert len(throttled) == 100 - len(allowed)
        for url in (a, b):  # each process refused some: one shared count, not one each
            assert any(str(r.url).startswith(url) for r in throttled)
    finally:
        for key in store.scan_iter(match=f"*{prefix}*"):
            store.delete(key)
        store.close()
