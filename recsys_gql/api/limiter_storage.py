"""`limits`' in-process storage, with the moving window kept as plain floats.

The stock :class:`limits.aio.storage.MemoryStorage` keeps every hit still in a moving window
as an ``Entry`` object, and prunes expired ones after every hit by hopping to a worker thread
once per key while holding that key's lock. Two costs followed under load:

- **Garbage collection.** Every ``Entry`` is an object the collector tracks. A busy client
  address (or many clients with small allowances) keeps a great many alive, and each full
  collection walked them all, stalling whatever ran then. Floats in a list are not tracked.
- **The lock held across a thread hop.** Every request of a busy key waited on the prune's
  hop, and the hop itself ran per hit.

Here each key's hits are their timestamps (the stock ``Entry.atime``), oldest first, so a hit
is an append rather than the stock insert at the front, which moved the whole list. The
strategies see the same answers (the tests hold the counts exact). One background task prunes
every :data:`PRUNE_INTERVAL` seconds on the event loop, synchronously: per key a bisection and
one slice, so no hit interleaves with it and no lock is needed. The fixed-window and
sliding-window counters of the stock storage are untouched.
"""

from __future__ import annotations

import asyncio
import bisect
import time

from limits.aio.storage import MemoryStorage

PRUNE_INTERVAL = 1.0
"""Seconds between pruning passes."""


class PeriodicallyPrunedMemoryStorage(MemoryStorage):
    """``memory://`` for :class:`~recsys_gql.api.limiter.RequestLimiter` (see the module
    docstring): moving-window hits as floats in ``hits``, oldest first (the stock ``events``
    stays empty), pruned by one background task (cancelled through ``timer`` on close)."""

    def __init__(self) -> None:
        super().__init__()
        self.hits: dict[str, list[float]] = {}
        """Each moving-window key's hit times, oldest first."""
        self._windows: dict[str, int] = {}
        """Each moving-window key's window length in seconds (for pruning)."""

    # MemoryStorage calls its private ``__schedule_expiry`` on every hit; this is that name
    # after Python's name mangling, so the override replaces it for every caller.
    async def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802
        if self.timer is None or self.timer.done():
            self.timer = asyncio.create_task(self._prune_periodically())

    async def _prune_periodically(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_INTERVAL)
            self.prune()

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Record ``amount`` hits now unless the window already holds ``limit - amount + 1``
        (the stock test: the hit ``limit - amount`` places back is still inside it)."""
        if amount > limit:
            return False
        await self._MemoryStorage__schedule_expiry()
        # No await from here on: on the event loop this is atomic, like the stock locked block.
        hits = self.hits.setdefault(key, [])
        self._windows[key] = expiry
        now = time.time()
        back = limit - amount  # how many places before the newest hit
        if len(hits) > back and hits[-1 - back] >= now - expiry:
            return False
        hits.extend([now] * amount)
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """``(time of the oldest hit in the window, hits in the window)``, as the stock does."""
        now = time.time()
        hits = self.hits.get(key, [])
        if not hits:
            return now, 0
        first_inside = bisect.bisect_right(hits, now - expiry)
        inside = len(hits) - first_inside
        return hits[first_inside] if inside else hits[0], inside

    async def clear(self, key: str) -> None:
        """Forget ``key`` (counters and hits)."""
        await super().clear(key)
        self.hits.pop(key, None)
        self._windows.pop(key, None)

    async def reset(self) -> int | None:
        """Forget every key."""
        count = max(len(self.storage), len(self.hits))
        await super().reset()
        self.hits.clear()
        self._windows.clear()
        return count

    def prune(self, now: float | None = None) -> None:
        """Drop hits older than their window and expired counters (what the stock pass drops)."""
        now = time.time() if now is None else now
        for key, hits in list(self.hits.items()):
            expired = bisect.bisect_right(hits, now - self._windows.get(key, 0))
            if expired == len(hits):
                self.hits.pop(key, None)
                self.locks.pop(key, None)
                self._windows.pop(key, None)
            elif expired:
                del hits[:expired]
        for key, expires in list(self.expirations.items()):
            if expires <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                self.locks.pop(key, None)
