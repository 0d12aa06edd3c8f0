"""One concern: how a request's engine calls share the event loop and the clock.

Every engine call of a request goes through that request's :class:`EngineCalls`, which

- **runs them one at a time, each after a turn of the event loop.** graphql-core resolves
  the items of a list concurrently: a list of 100 movies each selecting ``similar`` makes 100
  tasks, all ready in the same turn of the loop, and asyncio runs every ready task before it
  looks at the network again. Taken together they held the loop for hundreds of milliseconds
  while other clients' requests waited. Here a request's first call runs at once (an ordinary
  request waits for nothing) and each further call first yields to the loop, so a request
  contributes one engine call (and the completion of one result list) per turn, and everyone
  else's requests run in between.
- **runs cheap calls on the event loop and the rest in a worker thread.** A call estimated at
  most ``budget_ms`` runs inline: under the GIL a thread adds no core, and for a
  sub-millisecond call the thread handoffs cost more than the call.
- **starts nothing after the request's deadline** (``time.monotonic()``), whether the call
  would run inline or waited in the thread pool's queue:
  :class:`~recsys_gql.errors.DeadlineExceeded` instead. A request cancelled by its timeout
  stops waiting for a call already running in a thread, which finishes alone (one call's
  work) and is discarded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from anyio import to_thread

from recsys_gql.errors import DeadlineExceeded

P = ParamSpec("P")
T = TypeVar("T")


class EngineCalls:
    """The engine calls of one request (see the module docstring)."""

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        self._turn = asyncio.Lock()
        self.calls = 0
        """How many calls this request has started (for tests and logs)."""

    def check_deadline(self) -> None:
        """Raise :class:`~recsys_gql.errors.DeadlineExceeded` once the deadline has passed."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise DeadlineExceeded

    async def run(
        self,
        budget_ms: float,
        estimate_s: float,
        call: Callable[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``call(*args, **kwargs)``, in this request's turn: inline when ``estimate_s`` is
        within ``budget_ms``, else in a worker thread."""
        async with self._turn:
            if self.calls:  # not the request's first call: let the rest of the loop run first
                await asyncio.sleep(0)
            self.check_deadline()
            self.calls += 1
            if budget_ms > 0 and estimate_s * 1000 <= budget_ms:
                return call(*args, **kwargs)

            def in_thread() -> T:
                self.check_deadline()  # it may have waited for a thread past the deadline
                return call(*args, **kwargs)

            return await to_thread.run_sync(in_thread, abandon_on_cancel=True)
