"""Two real server processes on PostgreSQL and Redis: a subscriber on one replica gets its new
list within a second of a rating written through the other."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from recsys_gql.settings import Settings
from tests.live.wsclient import ids, live_stats, signed_in
from tests.processes import REDIS_URL, post, require_redis, served_process, wait_ready

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
RATE = """mutation ($u: Int!, $m: Int!) { rateMovie(input: {userId: $u, movieId: $m, rating: 5})
  { __typename } }"""


async def _rate_on_a_hear_on_b(a: str, b: str) -> list[float]:
    signed = post(a, "mutation { signUp { token user { id } } }").json()["data"]["signUp"]
    user, token = signed["user"]["id"], signed["token"]
    delays: list[float] = []
    async with signed_in(b, token) as live, httpx.AsyncClient(timeout=30) as http:
        await live.subscribe("1")
        current = ids(await live.receive())
        for _ in range(3):
            started = time.monotonic()
            saved = await http.post(
                f"{a}/graphql",
                json={"query": RATE, "variables": {"u": user, "m": current[0]}},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert saved.json()["data"]["rateMovie"]["__typename"] == "RatingSaved"
            updated = ids(await live.receive(timeout=5))
            delays.append(time.monotonic() - started)
            assert current[0] not in updated  # the rating made on A is in B's answer
            current = updated
        assert live_stats(b)["subscribers"] == 1
    return delays


@POSTGRES_ONLY
def test_a_rating_on_one_replica_updates_a_subscriber_on_the_other(
    api_settings: Settings, tmp_path: Path
) -> None:
    store = require_redis()
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    env = {
        "RECSYS_GQL_RATE_LIMIT_STORAGE": REDIS_URL,  # the live updates share this Redis
        "RECSYS_GQL_RATE_LIMIT_KEY_PREFIX": prefix,
        "RECSYS_GQL_RATE_LIMIT_READS": "1000/minute",
        "RECSYS_GQL_RATE_LIMIT_WRITES": "1000/minute",
        "RECSYS_GQL_PRELOAD_SEARCH_MODEL": "false",
    }
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    try:
        with ExitStack() as stack:
            a, b = (stack.enter_context(served_process(api_settings, env, log)) for log in logs)
            wait_ready([a, b], logs)
            delays = asyncio.run(_rate_on_a_hear_on_b(a, b))
        # from sending the mutation to A until B's new list arrived: the write, the
        # publish, B's recomputation and the push
        assert max(delays) < 1.0, delays
    finally:
        for key in store.scan_iter(match=f"*{prefix}*"):
            store.delete(key)
        store.close()
