"""The in-process limiter storage: exact counts, one pruning task, expired hits pruned."""

from __future__ import annotations

import asyncio

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter

from recsys_gql.api.limiter_storage import PRUNE_INTERVAL, PeriodicallyPrunedMemoryStorage


async def test_counts_are_exact_and_one_task_prunes() -> None:
    storage = PeriodicallyPrunedMemoryStorage()
    limiter = MovingWindowRateLimiter(storage)
    item = parse("5/second")
    try:
        allowed = [await limiter.hit(item, "k") for _ in range(8)]
        assert allowed == [True] * 5 + [False] * 3
        timer = storage.timer
        assert timer is not None
        assert not timer.done()
        await limiter.hit(item, "other")
        assert storage.timer is timer  # no new task (and no thread hop) per hit
        assert len(storage.events) == 2  # one list of hits per key
        await asyncio.sleep(1.1 + PRUNE_INTERVAL)  # the window has passed
        assert not storage.events  # pruned in the background
        assert await limiter.hit(item, "k")  # and the key has its whole allowance again
    finally:
        assert storage.timer is not None
        storage.timer.cancel()
