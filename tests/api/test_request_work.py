"""A request's work: cheap engine calls on the event loop, the rest in a thread; pieces after
the first take turns through the app's turnstile; nothing starts after the deadline."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

from recsys_gql.api.request_work import RequestWork, Turnstile
from recsys_gql.errors import DeadlineExceeded


async def test_a_call_estimated_within_the_budget_runs_on_the_event_loop() -> None:
    assert await RequestWork().run(1.0, 0.0004, threading.get_ident) == threading.get_ident()
    assert await RequestWork().run(1.0, 0.001, threading.get_ident) == threading.get_ident()


async def test_a_call_estimated_over_the_budget_runs_in_a_worker_thread() -> None:
    assert await RequestWork().run(1.0, 0.0011, threading.get_ident) != threading.get_ident()


async def test_a_zero_budget_sends_every_call_to_a_thread() -> None:
    assert await RequestWork().run(0.0, 0.0, threading.get_ident) != threading.get_ident()


async def test_arguments_and_errors_pass_through_either_way() -> None:
    for estimate in (0.0, 1.0):
        assert await RequestWork().run(1.0, estimate, divmod, 7, 2) == (3, 1)
        with pytest.raises(ValueError, match="seven"):
            await RequestWork().run(1.0, estimate, int, "seven")


async def test_a_call_past_its_deadline_never_starts() -> None:
    calls: list[int] = []
    past = time.monotonic() - 0.001
    for budget in (1.0, 0.0):  # inline, and in a thread
        with pytest.raises(DeadlineExceeded):
            await RequestWork(past).run(budget, 0.0, calls.append, 1)
    assert calls == []


async def test_a_call_queued_for_a_thread_past_its_deadline_never_starts() -> None:
    """A call that waits for a thread longer than its request has left is dropped when its
    turn comes, so a timed-out request leaves no queued work behind."""
    calls: list[int] = []
    release = threading.Event()
    turnstile = Turnstile(threads=1)  # one thread: the second call queues behind the first
    blocker = asyncio.create_task(RequestWork(None, turnstile).run(0.0, 0.0, release.wait, 5))
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(
        RequestWork(time.monotonic() + 0.1, turnstile).run(0.0, 0.0, calls.append, 1)
    )
    await asyncio.sleep(0.2)  # its deadline passes while it waits
    release.set()
    await blocker
    with pytest.raises(DeadlineExceeded):
        await queued
    assert calls == []


async def test_engine_calls_run_in_at_most_the_apps_threads_at_once() -> None:
    """However many requests call the engine together, no more than ``threads`` calls run at
    once, every call runs, and each in a worker thread (not on the loop)."""
    turnstile = Turnstile(threads=2)
    lock = threading.Lock()
    running, most, threads = 0, 0, set()

    def call(k: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            threads.add(threading.get_ident())
        time.sleep(0.02)
        with lock:
            running -= 1
        return k

    results = await asyncio.gather(
        *(RequestWork(None, turnstile).run(0.0, 1.0, call, k) for k in range(12))
    )
    assert results == list(range(12))
    assert most == 2
    assert threading.get_ident() not in threads


async def test_a_cancelled_request_stops_waiting_for_its_thread() -> None:
    release = threading.Event()
    started = time.monotonic()
    waiting = asyncio.create_task(RequestWork().run(0.0, 0.0, release.wait, 5))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert time.monotonic() - started < 1  # not the 5 s the call would take
    release.set()


async def test_a_requests_calls_take_turns_and_let_the_loop_run_between_them() -> None:
    """Twenty calls of one request started together run one at a time, and other work on the
    event loop (a ticker) runs between them: a request never holds the loop for all of them."""
    calls = RequestWork()
    order: list[str] = []

    def engine_call(i: int) -> int:
        order.append(f"call {i}")
        return i

    async def ticker() -> None:
        while len(order) - order.count("tick") < 20:
            order.append("tick")
            await asyncio.sleep(0)

    results = await asyncio.gather(
        ticker(), *(calls.run(1.0, 0.0, engine_call, i) for i in range(20))
    )
    assert results[1:] == list(range(20))
    assert calls.started == 20
    positions = [k for k, item in enumerate(order) if item.startswith("call")]
    between = [order[a + 1 : b] for a, b in itertools.pairwise(positions)]
    assert all("tick" in gap for gap in between), order


async def test_costly_requests_share_one_turn_per_loop_turn() -> None:
    """Two requests' later pieces of work, started together, never run two in one turn of the
    loop: the turnstile is the app's, not the request's."""
    turnstile = Turnstile()
    first, second = RequestWork(None, turnstile), RequestWork(None, turnstile)
    order: list[str] = []

    def work(name: str) -> None:
        order.append(name)

    async def ticker() -> None:
        while len(order) - order.count("tick") < 20:
            order.append("tick")
            await asyncio.sleep(0)

    await asyncio.gather(
        ticker(),
        *(first.run(1.0, 0.0, work, f"a{i}") for i in range(10)),
        *(second.run(1.0, 0.0, work, f"b{i}") for i in range(10)),
    )
    pieces = [k for k, item in enumerate(order) if item != "tick"]
    later = pieces[2:]  # each request's first piece starts at once
    assert all("tick" in order[a + 1 : b] for a, b in itertools.pairwise(later)), order


async def test_a_requests_first_piece_never_waits_for_the_turnstile() -> None:
    """An ordinary request (one engine call) is not held up by a costly one's turns."""
    turnstile = Turnstile()
    release = threading.Event()
    costly = RequestWork(None, turnstile)
    costly.started = 1  # its first piece is done: the next one takes a turn
    holding = asyncio.create_task(costly.run(0.0, 0.0, release.wait, 5))
    await asyncio.sleep(0.05)  # it now holds the turnstile, waiting in a thread
    ordinary = RequestWork(None, turnstile)
    assert await asyncio.wait_for(ordinary.run(1.0, 0.0, divmod, 7, 2), 1) == (3, 1)
    release.set()
    await holding


async def test_a_listing_turn_respects_the_deadline() -> None:
    work = RequestWork(time.monotonic() - 0.001)
    with pytest.raises(DeadlineExceeded):
        async with work.turn():
            pytest.fail("a listing started after the deadline")
