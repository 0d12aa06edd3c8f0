"""The in-process "user changed" bus, and the fan-out every backend delivers through.

A subscriber holds a :class:`Watch` on one user: a flag that each change of that user sets
and :meth:`Watch.wait` clears. Changes that arrive while a subscriber is busy (computing the
previous update) fold into one: a burst of ratings costs one recomputation, and a slow
subscriber holds no queue, whatever the write rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from recsys_gql.errors import RecsysError


class TooManySubscriptions(RecsysError):
    """A user already holds as many live subscriptions as one process allows."""

    code = "TOO_MANY_SUBSCRIPTIONS"


class Watch:
    """One subscriber's view of one user's changes."""

    __slots__ = ("_changed", "user_id")

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self._changed = asyncio.Event()

    def notify(self) -> None:
        """Mark the user changed (several marks before a wait count as one)."""
        self._changed.set()

    async def wait(self, timeout: float | None = None) -> bool:
        """``True`` once the user changed since the last wait; ``False`` after ``timeout``
        seconds without a change."""
        try:
            async with asyncio.timeout(timeout):
                await self._changed.wait()
        except TimeoutError:
            return False
        self._changed.clear()
        return True


class LocalUserChanges:
    """Changes published in this process reach this process's watches (see the module)."""

    def __init__(self) -> None:
        self._watches: dict[int, set[Watch]] = {}

    @contextmanager
    def watch(self, user_id: int, limit: int | None = None) -> Iterator[Watch]:
        """A watch on ``user_id`` for the ``with`` block; refused with
        :class:`TooManySubscriptions` when the user already holds ``limit`` of them."""
        watches = self._watches.setdefault(user_id, set())
        if limit is not None and len(watches) >= limit:
            if not watches:
                del self._watches[user_id]
            raise TooManySubscriptions(
                f"user {user_id} already has {len(watches)} live subscriptions open "
                f"(at most {limit}); close one first"
            )
        watch = Watch(user_id)
        watches.add(watch)
        try:
            yield watch
        finally:
            watches.discard(watch)
            if not watches:
                del self._watches[user_id]

    def watching(self, user_id: int) -> int:
        """How many watches ``user_id`` has in this process."""
        return len(self._watches.get(user_id, ()))

    @property
    def subscribers(self) -> int:
        """Every open watch in this process."""
        return sum(len(watches) for watches in self._watches.values())

    def deliver(self, user_id: int) -> None:
        """Wake this process's watches on ``user_id``."""
        for watch in self._watches.get(user_id, ()):
            watch.notify()

    def deliver_all(self) -> None:
        """Wake every watch (after changes may have been missed, e.g. a lost connection)."""
        for watches in self._watches.values():
            for watch in watches:
                watch.notify()

    async def publish_user_changed(self, user_id: int) -> None:
        """Announce that ``user_id``'s ratings or feedback changed (call after the commit).
        Never raises: the write is done whatever happens to the announcement."""
        self.deliver(user_id)

    async def start(self) -> None:
        """Nothing to start in-process."""

    async def close(self) -> None:
        """Nothing to close in-process."""
