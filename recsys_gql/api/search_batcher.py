"""Concurrent ``searchMovies`` queries encoded together, and repeated ones answered from memory.

Encoding a query with the sentence model costs milliseconds of CPU, most of it a fixed price
per call rather than per query: a batch of 32 short queries costs a few times one query, not
32 times. :class:`SearchBatcher` therefore gathers the queries that arrive together and hands
them to the engine's :meth:`~recsys_gql.recsys.engine.Engine.search_many` as one batch:

- **Window and cap.** When a query finds the batcher idle it waits at most ``window_s`` for
  company (less when ``max_batch`` queries have gathered), so a lone query pays only that
  window over the single-query latency. While a batch is being encoded, arrivals queue, and
  the next batch leaves as soon as the encoder is free: under load the batch size follows the
  load, with no window at all.
- **Off the event loop.** Batches run one at a time on the batcher's own single thread, never
  the shared thread pool, so the encoder (whose intra-op threads are set where the encoder is
  built) never has more than one call in flight, and the event loop keeps the other core.
- **A bounded cache.** Answers are kept per (query, ``first``), least recently used first out,
  at most ``cache_size`` of them; identical queries in flight share one encoding. The answer is
  a pure function of the loaded artifacts and the query, so a cached answer is never stale.
- **Errors and cancellation.** Each query is checked before it joins a batch, so bad input
  fails alone with its own error; an error of the batch itself (the model failing to load,
  say) reaches every caller of that batch. A caller that gives up (a timeout) leaves the
  batch and every other caller's answer untouched.

One batcher per app, owned by the lifespan: it is bound to the event loop that serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

H = TypeVar("H")
SearchKey = tuple[str, int]
Outcome = tuple[H, ...] | BaseException


@dataclass
class SearchStats:
    """Counters of one batcher, for operators and benchmarks."""

    cache_hits: int = 0
    cache_misses: int = 0
    """Queries that were not in the cache (joining an identical query in flight included)."""
    shared: int = 0
    """Misses that joined an identical query already waiting or being encoded."""
    batches: int = 0
    batched_queries: int = 0
    """Distinct queries encoded, over all batches."""
    largest_batch: int = 0

    def as_dict(self) -> dict[str, float]:
        """The counters and the derived ratios, as JSON numbers."""
        looked_up = self.cache_hits + self.cache_misses
        return {
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "cache_hit_ratio": round(self.cache_hits / looked_up, 4) if looked_up else 0.0,
            "shared": self.shared,
            "batches": self.batches,
            "batched_queries": self.batched_queries,
            "mean_batch": round(self.batched_queries / self.batches, 2) if self.batches else 0.0,
            "largest_batch": self.largest_batch,
        }


class SearchBatcher(Generic[H]):
    """Micro-batches ``search_many(texts, n)`` calls (see the module docstring).

    ``check(text)`` validates one query and returns it as it is encoded (raising the error its
    caller should get); ``search_many(texts, n)`` answers checked queries in order.
    Not thread-safe: use it from the event loop's thread only.
    """

    def __init__(
        self,
        search_many: Callable[[Sequence[str], int], Sequence[Sequence[H]]],
        check: Callable[[str], str],
        *,
        window_s: float = 0.002,
        max_batch: int = 32,
        cache_size: int = 4096,
        on_cache_lookup: Callable[[bool], None] | None = None,
    ) -> None:
        if window_s < 0:
            raise ValueError(f"window_s must be 0 or more, got {window_s}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if cache_size < 0:
            raise ValueError(f"cache_size must be 0 or more, got {cache_size}")
        self._search_many = search_many
        self._check = check
        self.window_s = window_s
        self.max_batch = max_batch
        self.cache_size = cache_size
        self.stats = SearchStats()
        self.on_cache_lookup = on_cache_lookup
        """Called with ``True`` for each cache hit and ``False`` for each miss (metrics)."""
        self._cache: OrderedDict[SearchKey, tuple[H, ...]] = OrderedDict()
        self._waiting: OrderedDict[SearchKey, asyncio.Future[tuple[H, ...]]] = OrderedDict()
        self._in_flight: dict[SearchKey, asyncio.Future[tuple[H, ...]]] = {}
        self._full = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search-batch")
        self._closed = False

    def __len__(self) -> int:
        """How many answers the cache holds."""
        return len(self._cache)

    async def search(self, text: str, n: int) -> tuple[H, ...]:
        """The answer to one query: from the cache, or from the next batch."""
        if self._closed:
            raise RuntimeError("the search batcher is closed")
        query = " ".join(self._check(text).split())  # the same tokens, one key
        key = (query, n)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self.stats.cache_hits += 1
            if self.on_cache_lookup is not None:
                self.on_cache_lookup(True)
            return cached
        self.stats.cache_misses += 1
        if self.on_cache_lookup is not None:
            self.on_cache_lookup(False)
        future = self._waiting.get(key) or self._in_flight.get(key)
        if future is not None:
            self.stats.shared += 1
        else:
            future = asyncio.get_running_loop().create_future()
            self._waiting[key] = future
            if len(self._waiting) >= self.max_batch:
                self._full.set()
            if self._runner is None or self._runner.done():
                self._runner = asyncio.create_task(self._run())
        # shielded: a caller that gives up must not cancel the answer others wait for
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Answer every query already queued, then stop the batcher's thread."""
        self._closed = True
        if self._runner is not None:
            await self._runner
        self._thread.shutdown(wait=True)

    async def _run(self) -> None:
        """Send batches to the thread until no query waits. Only the first batch after an
        idle spell waits for the window: later ones gathered while the previous ran."""
        if self.window_s > 0 and len(self._waiting) < self.max_batch:
            self._full.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self.window_s)
        loop = asyncio.get_running_loop()
        while self._waiting:
            batch: list[tuple[SearchKey, asyncio.Future[tuple[H, ...]]]] = []
            while self._waiting and len(batch) < self.max_batch:
                batch.append(self._waiting.popitem(last=False))
            self._full.clear()
            self._in_flight.update(batch)
            self.stats.batches += 1
            self.stats.batched_queries += len(batch)
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            try:
                outcomes = await loop.run_in_executor(
                    self._thread, self._answer, [key for key, _ in batch]
                )
            except BaseException as error:  # the loop is stopping: fail the batch's callers
                outcomes = [error] * len(batch)
                raise
            finally:
                for (key, future), outcome in zip(batch, outcomes, strict=True):
                    del self._in_flight[key]
                    self._settle(key, future, outcome)

    def _answer(self, keys: Sequence[SearchKey]) -> list[Outcome[H]]:
        """Each key's answer or error (in the batcher's thread): one ``search_many`` call per
        distinct ``n``, so every query is answered exactly as a lone search of its own."""
        outcomes: list[Outcome[H]] = [RuntimeError("unanswered")] * len(keys)
        by_n: dict[int, list[int]] = {}
        for position, (_, n) in enumerate(keys):
            by_n.setdefault(n, []).append(position)
        for n, positions in by_n.items():
            try:
                answers = self._search_many([keys[p][0] for p in positions], n)
            except Exception as error:  # reaches every caller of this group
                for p in positions:
                    outcomes[p] = error
                continue
            for p, answer in zip(positions, answers, strict=True):
                outcomes[p] = tuple(answer)
        return outcomes

    def _settle(
        self, key: SearchKey, future: asyncio.Future[tuple[H, ...]], outcome: Outcome[H]
    ) -> None:
        if isinstance(outcome, BaseException):
            if not future.done():
                future.set_exception(outcome)
            future.exception()  # retrieved: no "never retrieved" warning when all gave up
            return
        if self.cache_size:
            self._cache[key] = outcome
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        if not future.done():
            future.set_result(outcome)
