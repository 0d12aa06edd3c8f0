"""One concern: how a request's work shares the event loop, the worker threads and the clock.

Every engine call and every database listing of a request goes through that request's
:class:`RequestWork`, which

- **lets a request's first piece of work start at once, and makes each further piece wait
  for a turn.** graphql-core resolves the items of a list concurrently: a list of 100 movies
  each selecting ``similar`` makes 100 tasks, all ready in the same turn of the event loop,
  and asyncio runs every ready task before it looks at the network again; together they held
  the loop for hundreds of milliseconds while other clients waited. A turn is taken through
  one :class:`Turnstile` per app, and after a turn of the loop: however many costly requests
  are in flight, the loop runs one such piece of work (and the completion of one result
  list) between two looks at the network, and everyone else's requests run in between. An
  ordinary request, whose work is one engine call, never waits.
- **runs engine calls within a budget on the event loop and the rest in a worker thread.** A
  call estimated at most ``budget_ms`` runs inline: under the GIL a thread adds no core, only
  hand-offs of the GIL. A costlier call goes to a thread, so that no single call holds the loop
  for longer than the budget (the app's is ``inline_engine_ms``). The app's worker threads
  for engine calls are few (:attr:`Turnstile.threads`, ``engine_threads``): the other calls
  queue in order instead of passing the GIL back and forth between dozens of threads.
- **starts nothing after the request's deadline** (``time.monotonic()``), whether the work
  would run inline or waited in the thread pool's queue:
  :class:`~recsys_gql.errors.DeadlineExceeded` instead. A request cancelled by its timeout
  stops waiting for a call already running in a thread, which finishes alone (one call's
  work) and is discarded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import ParamSpec, TypeVar

from anyio import CapacityLimiter, to_thread

from recsys_gql.errors import DeadlineExceeded

P = ParamSpec("P")
T = TypeVar("T")


class Turnstile:
    """The app's turns on the event loop for requests' second and later pieces of work, and
    its worker threads for engine calls (``threads`` at once)."""

    def __init__(self, threads: int = 2) -> None:
        self._lock = asyncio.Lock()
        self.threads = CapacityLimiter(threads)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Held by one piece of work at a time, entered after a turn of the event loop."""
        async with self._lock:
            await asyncio.sleep(0)  # everything else that is ready runs first
            yield


class RequestWork:
    """The engine calls and listings of one request (see the module docstring)."""

    def __init__(self, deadline: float | None = None, turnstile: Turnstile | None = None) -> None:
        self.deadline = deadline
        self.turnstile = turnstile or Turnstile()
        self.started = 0
        """How many pieces of work this request has started (for tests and logs)."""

    def check_deadline(self) -> None:
        """Raise :class:`~recsys_gql.errors.DeadlineExceeded` once the deadline has passed."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise DeadlineExceeded

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """A turn for one piece of this request's work: at once for its first, through the
        turnstile for the others; refused once the deadline has passed."""
        if self.started == 0:
            self.started += 1
            self.check_deadline()
            yield
            return
        self.started += 1
        async with self.turnstile.turn():
            self.check_deadline()
            yield

    async def run(
        self,
        budget_ms: float,
        estimate_s: float,
        call: Callable[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``call(*args, **kwargs)`` in a turn of this request: inline when ``estimate_s`` is
        within ``budget_ms``, else in a worker thread."""
        async with self.turn():
            if budget_ms > 0 and estimate_s * 1000 <= budget_ms:
                return call(*args, **kwargs)

            def in_thread() -> T:
                self.check_deadline()  # it may have waited for a thread past the deadline
                return call(*args, **kwargs)

            return await to_thread.run_sync(
                in_thread, abandon_on_cancel=True, limiter=self.turnstile.threads
            )
