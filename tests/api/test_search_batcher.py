"""The search micro-batcher on a recording stand-in for ``Engine.search_many``: batching, the
window and the cap, the bounded cache, errors and cancellation. (That a batched answer is the
lone search's answer is held against the real engine in tests/recsys/test_search_many.py.)"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from recsys_gql.api.search_batcher import SearchBatcher
from recsys_gql.errors import InvalidParameter
from recsys_gql.recsys.engine import check_query


class RecordingSearch:
    """Answers query ``q`` with ``n`` hits ``"q#0"``…; records each call's texts and ``n``.
    ``gate``, when set, holds every call until it is opened."""

    def __init__(self, *, fail: BaseException | None = None, gated: bool = False) -> None:
        self.calls: list[tuple[list[str], int]] = []
        self.fail = fail
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.started = threading.Event()

    def __call__(self, texts: Sequence[str], n: int) -> list[list[str]]:
        self.calls.append((list(texts), n))
        self.started.set()
        assert self.gate.wait(10), "the test never opened the gate"
        if self.fail is not None:
            raise self.fail
        return [[f"{text}#{i}" for i in range(n)] for text in texts]


def batcher(search: RecordingSearch, **options: float) -> SearchBatcher[str]:
    return SearchBatcher(search, check_query, **options)  # type: ignore[arg-type]


async def test_concurrent_queries_share_one_batch() -> None:
    search = RecordingSearch()
    subject = batcher(search, window_s=0.2)
    answers = await asyncio.gather(*(subject.search(f"query {i}", 3) for i in range(10)))
    assert answers == [tuple(f"query {i}#{k}" for k in range(3)) for i in range(10)]
    assert search.calls == [([f"query {i}" for i in range(10)], 3)]
    assert subject.stats.batches == 1
    assert subject.stats.largest_batch == 10
    await subject.close()


async def test_the_cap_sends_a_full_batch_without_waiting_for_the_window() -> None:
    search = RecordingSearch()
    subject = batcher(search, window_s=30.0, max_batch=4)
    answers = await asyncio.wait_for(
        asyncio.gather(*(subject.search(f"q{i}", 1) for i in range(4))), timeout=10
    )
    assert [a[0] for a in answers] == ["q0#0", "q1#0", "q2#0", "q3#0"]
    await subject.close()


async def test_a_lone_query_waits_only_for_the_window() -> None:
    search = RecordingSearch()
    subject = batcher(search, window_s=0.05, max_batch=32)
    start = time.perf_counter()
    assert await subject.search("alone", 2) == ("alone#0", "alone#1")
    waited = time.perf_counter() - start
    assert 0.05 <= waited < 2.0  # the window, and not the cap's 32 queries that never come
    subject_now = batcher(RecordingSearch(), window_s=0.0)
    assert await asyncio.wait_for(subject_now.search("alone", 1), timeout=5) == ("alone#0",)
    await subject.close()
    await subject_now.close()


async def test_batches_beyond_the_cap_follow_each_other() -> None:
    search = RecordingSearch()
    subject = batcher(search, window_s=0.05, max_batch=3)
    answers = await asyncio.gather(*(subject.search(f"q{i}", 1) for i in range(7)))
    assert [a[0] for a in answers] == [f"q{i}#0" for i in range(7)]
    assert [len(texts) for texts, _ in search.calls] == [3, 3, 1]
    await subject.close()


async def test_each_first_is_searched_apart() -> None:
    search = RecordingSearch()
    subject = batcher(search, window_s=0.1)
    a, b, c = await asyncio.gather(
        subject.search("x", 2), subject.search("y", 5), subject.search("z", 2)
    )
    assert (len(a), len(b), len(c)) == (2, 5, 2)
    assert sorted(search.calls) == [(["x", "z"], 2), (["y"], 5)]
    await subject.close()


async def test_repeated_queries_hit_a_bounded_cache() -> None:
    search = RecordingSearch()
    subject = batcher(search, window_s=0.0, cache_size=2)
    for text in ("first", "second", "third"):
        await subject.search(text, 1)
    assert len(subject) == 2  # "first" went out
    assert await subject.search("  third  ", 1) == ("third#0",)  # same text, other blanks
    assert subject.stats.cache_hits == 1
    await subject.search("first", 1)
    assert subject.stats.cache_misses == 4
    assert [texts for texts, _ in search.calls] == [["first"], ["second"], ["third"], ["first"]]
    assert subject.stats.as_dict()["cache_hit_ratio"] == 0.2
    uncached = batcher(RecordingSearch(), window_s=0.0, cache_size=0)
    await uncached.search("x", 1)
    assert len(uncached) == 0
    await subject.close()
    await uncached.close()


async def test_identical_queries_in_flight_share_one_encoding() -> None:
    search = RecordingSearch()
    subject = batcher(search, window_s=0.1)
    answers = await asyncio.gather(*(subject.search("same", 1) for _ in range(5)))
    assert answers == [("same#0",)] * 5
    assert search.calls == [(["same"], 1)]
    assert subject.stats.shared == 4
    await subject.close()


async def test_an_error_of_the_batch_reaches_every_caller() -> None:
    search = RecordingSearch(fail=RuntimeError("the model did not load"))
    subject = batcher(search, window_s=0.1)
    results = await asyncio.gather(
        *(subject.search(f"q{i}", 1) for i in range(4)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) and "did not load" in str(r) for r in results)
    assert len(subject) == 0  # errors are not cached
    search.fail = None
    assert await subject.search("q0", 1) == ("q0#0",)  # the next batch tries again
    await subject.close()


async def test_bad_input_fails_alone() -> None:
    search = RecordingSearch()
    subject = batcher(search, window_s=0.1)
    good, empty, long = await asyncio.gather(
        subject.search("fine", 1),
        subject.search("   ", 1),
        subject.search("x" * 1001, 1),
        return_exceptions=True,
    )
    assert good == ("fine#0",)
    assert isinstance(empty, InvalidParameter)
    assert empty.parameter == "text"
    assert isinstance(long, InvalidParameter)
    assert "1000" in str(long)
    assert search.calls == [(["fine"], 1)]
    await subject.close()


async def test_a_cancelled_caller_leaves_the_others_their_answers() -> None:
    search = RecordingSearch(gated=True)
    subject = batcher(search, window_s=0.05)
    tasks = [asyncio.create_task(subject.search(text, 1)) for text in ("a", "b", "a")]
    await asyncio.get_running_loop().run_in_executor(None, search.started.wait, 10)
    tasks[0].cancel()  # gives up on "a" while the batch is being encoded
    search.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    assert await tasks[1] == ("b#0",)
    assert await tasks[2] == ("a#0",)  # the other caller of "a" still gets it
    assert await subject.search("a", 1) == ("a#0",)  # and it was cached
    assert len(search.calls) == 1
    await subject.close()


async def test_close_answers_what_is_queued_then_refuses() -> None:
    search = RecordingSearch()
    subject = batcher(search, window_s=0.05)
    pending = asyncio.create_task(subject.search("late", 1))
    await asyncio.sleep(0)
    await subject.close()
    assert await pending == ("late#0",)
    with pytest.raises(RuntimeError, match="closed"):
        await subject.search("after", 1)


def test_options_are_checked() -> None:
    for options in ({"window_s": -1.0}, {"max_batch": 0}, {"cache_size": -1}):
        with pytest.raises(ValueError, match="must be"):
            batcher(RecordingSearch(), **options)
