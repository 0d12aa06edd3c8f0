"""The in-process limiter storage: exact counts, one pruning task, expired hits pruned, and
hits kept as floats the garbage collector does not track."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator

import pytest
from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter

from recsys_gql.api.limiter_storage import PRUNE_INTERVAL, PeriodicallyPrunedMemoryStorage


@pytest.fixture
async def storage() -> AsyncIterator[PeriodicallyPrunedMemoryStorage]:
    """A fresh storage; its pruning task, started by the first hit, is cancelled afterwards."""
    storage = PeriodicallyPrunedMemoryStorage()
    yield storage
    assert storage.timer is not None
    storage.timer.cancel()


async def test_counts_are_exact_and_one_task_prunes(
    storage: PeriodicallyPrunedMemoryStorage,
) -> None:
    limiter = MovingWindowRateLimiter(storage)
    item = parse("5/second")
    allowed = [await limiter.hit(item, "k") for _ in range(8)]
    assert allowed == [True] * 5 + [False] * 3
    timer = storage.timer
    assert timer is not None
    assert not timer.done()
    await limiter.hit(item, "other")
    assert storage.timer is timer  # no new task (and no thread hop) per hit
    assert len(storage.hits) == 2  # one list of hits per key
    await asyncio.sleep(1.1 + PRUNE_INTERVAL)  # the window has passed
    assert not storage.hits  # pruned in the background
    assert await limiter.hit(item, "k")  # and the key has its whole allowance again


async def test_a_pass_drops_only_expired_hits_and_leaves_counts_exact(
    storage: PeriodicallyPrunedMemoryStorage,
) -> None:
    limiter = MovingWindowRateLimiter(storage)
    item = parse("10/minute")
    for _ in range(4):
        assert await limiter.hit(item, "k")
    start = time.time()
    storage.prune(start + 30)  # nothing has expired yet
    assert len(storage.hits[item.key_for("k")]) == 4
    storage.prune(start + 61)  # every hit has
    assert not storage.hits
    assert not storage.locks
    for _ in range(10):  # a fresh window: the whole allowance again, and no more
        assert await limiter.hit(item, "k")
    assert not await limiter.hit(item, "k")
    events = storage.hits[item.key_for("k")]
    events[:5] = [time.time() - 61] * 5  # the oldest five left the window
    assert (await limiter.get_window_stats(item, "k")).remaining == 5
    storage.prune()
    assert len(events) == 5
    for _ in range(5):  # room for exactly the five dropped
        assert await limiter.hit(item, "k")
    assert not await limiter.hit(item, "k")


async def test_hits_are_floats_the_collector_does_not_walk(
    storage: PeriodicallyPrunedMemoryStorage,
) -> None:
    limiter = MovingWindowRateLimiter(storage)
    for _ in range(100):
        assert await limiter.hit(parse("1000/minute"), "k")
    (hits,) = storage.hits.values()
    assert len(hits) == 100
    assert all(type(hit) is float and not gc.is_tracked(hit) for hit in hits)
