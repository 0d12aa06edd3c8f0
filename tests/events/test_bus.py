"""The "user changed" bus: watches, caps and clean-up in-process; across two buses on a real
Redis; and what happens when Redis goes away."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from recsys_gql.events import (
    LocalUserChanges,
    RedisUserChanges,
    TooManySubscriptions,
    open_user_changes,
)
from recsys_gql.settings import Settings
from tests.processes import REDIS_URL, require_redis


async def test_a_change_wakes_the_users_watches_only() -> None:
    bus = LocalUserChanges()
    with bus.watch(1) as one, bus.watch(1) as again, bus.watch(2) as two:
        await bus.publish_user_changed(1)
        assert await one.wait(0.1)
        assert await again.wait(0.1)
        assert not await two.wait(0.05)


async def test_changes_during_a_busy_spell_fold_into_one() -> None:
    bus = LocalUserChanges()
    with bus.watch(7) as watch:
        for _ in range(50):
            await bus.publish_user_changed(7)
        assert await watch.wait(0.1)
        assert not await watch.wait(0.05)  # no queue of 49 more


async def test_the_cap_counts_open_watches_and_leaving_frees_a_place() -> None:
    bus = LocalUserChanges()
    with bus.watch(3, limit=2), bus.watch(3, limit=2):
        with pytest.raises(TooManySubscriptions, match="at most 2"), bus.watch(3, limit=2):
            pass
        assert bus.watching(3) == 2
    assert bus.subscribers == 0
    with bus.watch(3, limit=2):
        assert bus.watching(3) == 1


async def test_a_cancelled_waiter_leaves_nothing() -> None:
    bus = LocalUserChanges()

    async def subscriber() -> None:
        with bus.watch(5) as watch:
            await watch.wait()

    tasks = [asyncio.create_task(subscriber()) for _ in range(200)]
    await asyncio.sleep(0)
    assert bus.subscribers == 200
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert bus.subscribers == 0


def test_redis_is_used_when_the_settings_name_it() -> None:
    assert isinstance(open_user_changes(Settings()), LocalUserChanges)
    assert not isinstance(open_user_changes(Settings()), RedisUserChanges)
    shared = Settings(rate_limit_storage=REDIS_URL)
    assert isinstance(open_user_changes(shared), RedisUserChanges)
    own = Settings(live_updates_redis=REDIS_URL)
    assert isinstance(open_user_changes(own), RedisUserChanges)


@pytest.fixture
async def buses() -> AsyncIterator[tuple[RedisUserChanges, RedisUserChanges]]:
    require_redis().close()
    channel = f"test-{uuid.uuid4().hex[:10]}:user-changed"
    a, b = RedisUserChanges(REDIS_URL, channel), RedisUserChanges(REDIS_URL, channel)
    await a.start()
    await b.start()
    assert a.listening.is_set()
    assert b.listening.is_set()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_a_change_published_on_one_replica_wakes_watches_on_both(
    buses: tuple[RedisUserChanges, RedisUserChanges],
) -> None:
    a, b = buses
    with a.watch(11) as here, b.watch(11) as there, b.watch(12) as other:
        await a.publish_user_changed(11)
        assert await there.wait(2)
        assert await here.wait(2)
        assert not await other.wait(0.2)


async def test_when_redis_cannot_take_a_publish_this_replica_still_hears_it() -> None:
    bus = RedisUserChanges("redis://127.0.0.1:1", "unreachable:user-changed")  # nothing listens
    try:
        with bus.watch(4) as watch:
            await bus.publish_user_changed(4)
            assert await watch.wait(0.1)
    finally:
        await bus.close()


async def test_a_listener_that_lost_redis_reconnects_and_wakes_everyone(
    buses: tuple[RedisUserChanges, RedisUserChanges],
) -> None:
    a, b = buses
    admin = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        with b.watch(21) as watch:
            clients = await admin.client_list(_type="pubsub")
            [mine] = [c for c in clients if c.get("name") == b.listener_name]
            await admin.client_kill_filter(_id=mine["id"])
            # changes may have passed while it was away: every watch is woken once it is back
            assert await watch.wait(5)
            await a.publish_user_changed(21)  # and it hears the channel again
            assert await watch.wait(5)
    finally:
        await admin.aclose()
