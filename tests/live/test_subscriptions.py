"""``recommendationsUpdated`` over a real WebSocket against a real server: the first list at
once and a new one after a rating, authentication refusals and revocation, the caps, cost
and rate limits, and nothing left behind by hundreds of vanished clients."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from recsys_gql.api.security import revoke
from recsys_gql.db.session import Database
from recsys_gql.settings import Settings
from tests.api.conftest import Server, running, sign_up
from tests.live.wsclient import ids, live_stats, opened, signed_in

RATE = """mutation ($u: Int!, $m: Int!, $r: Float!) {
  rateMovie(input: {userId: $u, movieId: $m, rating: $r}) { __typename } }"""


def error_code(message: dict[str, Any]) -> str:
    """The code of the first error of an ``error`` message or of a ``next`` without data."""
    payload = message["payload"]
    if message["type"] == "next":
        assert payload["data"] is None, message
        payload = payload["errors"]
    else:
        assert message["type"] == "error", message
    code: str = payload[0]["extensions"]["code"]
    return code


def rate(server: Server, token: str, user: int, movie: int, rating: float = 5.0) -> None:
    body = server.graphql(RATE, {"u": user, "m": movie, "r": rating}, token=token)
    assert body["data"]["rateMovie"]["__typename"] == "RatingSaved", body


async def test_sends_the_list_at_once_then_again_after_a_rating(api: Server) -> None:
    user, token = sign_up(api)
    async with signed_in(api.url, token) as live:
        await live.subscribe("1")
        first = ids(await live.receive())
        assert len(first) == 5
        # rating the top recommendation removes it from the next list (rated movies are excluded)
        await asyncio.to_thread(rate, api, token, user, first[0])
        started = time.monotonic()
        second = ids(await live.receive(timeout=5))
        assert time.monotonic() - started < 1.0
        assert first[0] not in second
        await live.send({"id": "1", "type": "complete"})


HIDE = """mutation ($m: Int!) { hideMovie(movieId: $m) { __typename } }"""
UNHIDE = """mutation ($m: Int!) { unhideMovie(movieId: $m) { __typename } }"""


def feedback(server: Server, token: str, mutation: str, movie: int) -> None:
    body = server.graphql(mutation, {"m": movie}, token=token)
    [payload] = body["data"].values()
    assert payload["__typename"] == "MovieFeedbackSaved", body


async def test_hiding_and_unhiding_a_movie_send_new_lists(api: Server) -> None:
    _, token = sign_up(api)
    async with signed_in(api.url, token) as live:
        await live.subscribe("1")
        first = ids(await live.receive())
        await asyncio.to_thread(feedback, api, token, HIDE, first[0])
        hidden = ids(await live.receive(timeout=5))
        assert first[0] not in hidden
        await asyncio.to_thread(feedback, api, token, UNHIDE, first[0])
        assert ids(await live.receive(timeout=5)) == first  # shown again, in its old place
        await live.send({"id": "1", "type": "complete"})


async def test_another_users_rating_sends_nothing(api: Server) -> None:
    _, token = sign_up(api)
    other, other_token = sign_up(api)
    async with signed_in(api.url, token) as live:
        await live.subscribe("1")
        ids(await live.receive())
        await asyncio.to_thread(rate, api, other_token, other, 1)
        with pytest.raises(TimeoutError):
            await live.receive(timeout=1.0)


@pytest.mark.parametrize(
    "payload",
    [
        None,  # no token at all
        {"Authorization": "Bearer rgq_not-a-real-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": 42},
    ],
)
async def test_a_connection_without_a_live_token_is_closed_with_4403(
    api: Server, payload: dict[str, Any] | None
) -> None:
    async with opened(api.url, payload) as live:
        assert await live.close_code() == 4403


async def test_subscribing_before_connection_init_is_closed_with_4401(api: Server) -> None:
    async with opened(api.url, None, init=False) as live:
        await live.subscribe("1")
        assert await live.close_code() == 4401


async def test_a_revoked_token_closes_the_connection_with_4403(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"ws_keep_alive_seconds": 0.2})
    with running(settings) as server:
        _, token = sign_up(server)
        async with signed_in(server.url, token) as live:
            await live.subscribe("1")
            ids(await live.receive())
            database = Database.open(settings.database_url)
            try:
                assert await revoke(database, token)
            finally:
                await database.dispose()
            assert await live.close_code(timeout=5) == 4403


async def test_each_user_has_a_cap_on_open_subscriptions(api: Server) -> None:
    cap = api.settings.max_subscriptions_per_user
    per_connection = api.settings.max_subscriptions_per_connection
    _user, token = sign_up(api)
    async with signed_in(api.url, token) as a, signed_in(api.url, token) as b:
        for n in range(cap):  # spread over two connections: the cap is the user's
            live = a if n < per_connection - 1 else b
            await live.subscribe(str(n))
            ids(await live.receive())
        await b.subscribe("over")
        refused = await b.receive()
        assert refused["id"] == "over"
        assert error_code(refused) == "TOO_MANY_SUBSCRIPTIONS", refused
        if refused["type"] == "next":
            assert (await b.receive())["type"] == "complete"
        await a.send({"id": "0", "type": "complete"})  # one closed: room for one more
        await asyncio.sleep(0.2)
        await b.subscribe("again")
        assert ids(await b.receive())


async def test_one_connection_has_a_cap_on_open_operations(api: Server) -> None:
    cap = api.settings.max_subscriptions_per_connection
    _, token = sign_up(api)
    async with signed_in(api.url, token) as live:
        for n in range(cap):
            await live.subscribe(str(n))
            ids(await live.receive())
        await live.subscribe("over")
        refused = await live.receive()
        assert refused == {
            "id": "over",
            "type": "error",
            "payload": [{"message": "Subscription limit reached"}],
        }


async def test_a_too_costly_subscription_is_refused_before_it_runs(api: Server) -> None:
    _, token = sign_up(api)
    costly = """subscription { recommendationsUpdated(first: 100) {
      movie { similar(first: 100) { movie { title } } } } }"""
    async with signed_in(api.url, token) as live:
        await live.subscribe("1", costly, {})
        refused = await live.receive()
        assert error_code(refused) == "QUERY_TOO_COSTLY", refused


async def test_subscribing_spends_reads_of_the_rate_limit(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"rate_limit_reads": "2/minute"})
    with running(settings) as server:
        _, token = sign_up(server)
        async with signed_in(server.url, token) as live:
            for n in range(2):
                await live.subscribe(str(n))
                ids(await live.receive())
            await live.subscribe("2")
            refused = await live.receive()
            assert error_code(refused) == "RATE_LIMITED", refused


async def test_hundreds_of_vanished_clients_leave_nothing_behind(api: Server) -> None:
    _, token = sign_up(api)
    before = await asyncio.to_thread(live_stats, api.url)
    assert before["subscribers"] == 0
    for cycle in range(300):
        async with signed_in(api.url, token) as live:
            await live.subscribe("1")
            ids(await live.receive())
            if cycle % 3 == 0:  # a polite client completes; the others just go away
                await live.send({"id": "1", "type": "complete"})
            if cycle % 3 == 1:
                live.ws.transport.abort()  # no close handshake at all: a dropped connection
    deadline = time.monotonic() + 10
    while True:
        after = await asyncio.to_thread(live_stats, api.url)
        settled = after["subscribers"] == 0 and after["tasks"] <= before["tasks"]
        if settled or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert after["subscribers"] == 0
    assert after["tasks"] <= before["tasks"], (before, after)


async def test_the_server_pings_an_idle_connection(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"ws_keep_alive_seconds": 0.2})
    with running(settings) as server:
        _, token = sign_up(server)
        async with signed_in(server.url, token) as live:
            async with asyncio.timeout(5):
                message = json.loads(await live.ws.recv())
            assert message == {"type": "ping"}
            await live.send({"type": "pong"})
            await live.subscribe("1")  # still usable
            assert ids(await live.receive())


def test_a_subscription_over_http_is_refused_clearly(api: Server) -> None:
    response = httpx.post(
        f"{api.url}/graphql", json={"query": "subscription { recommendationsUpdated { score } }"}
    )
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "SUBSCRIPTION_NEEDS_WEBSOCKET"
    assert "WebSocket" in error["message"]
