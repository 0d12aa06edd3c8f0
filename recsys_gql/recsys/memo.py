"""A bounded memo of recommendation answers that can never serve a stale one.

``recommend`` is a pure function of the loaded artifacts (fixed for the life of a process),
the arguments and the user's ratings. An entry is keyed by the user and the arguments, and
keeps the ratings it was computed from; a lookup must present the user's ratings as read
from the database for this request, and it hits only when they are equal in full (a dict
comparison, a few microseconds). A rating committed by any process or replica changes what
the next request reads, so it misses and is computed afresh.

The read itself can be skipped when the database can say it has not changed at all: SQLite
keeps a counter (``PRAGMA data_version``) that moves whenever any other connection, in this
process or another, commits. An entry remembers the counter read before its ratings were;
while the counter still has that value, nothing was committed since, so the ratings are still
those and the entry answers without reading them. Databases without such a counter
(PostgreSQL here) always read and compare.

A user's hidden movies (negative feedback) are inputs just like the ratings: an entry keeps
the hidden set it was computed with and a lookup hits only when the set presented is equal
too, so a ``hideMovie`` committed anywhere is never answered with the list from before it.

Front ends ask for the same list again and again (a page shown, revisited, re-rendered); a
hit skips the engine call and building the answer, most of a ``recommendations`` request's
own work.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

MemoKey = tuple[Hashable, ...]
T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    ratings: Mapping[int, float]
    result: tuple[T, ...]
    version: int | None
    hidden: frozenset[int] = frozenset()
    """The user's hidden movies the result was computed with."""
    """The database's change counter read before ``ratings`` were (``None``: unknown)."""


class RecommendationMemo(Generic[T]):
    """Least-recently-used results, at most ``size`` of them (``0``: nothing is kept).

    ``T`` is what a result is a list of: the engine's recommendations, or anything built from
    them alone that is never mutated (the API keeps its GraphQL objects, built once).
    Not thread-safe: use it from the event loop's thread only.
    """

    def __init__(self, size: int, on_lookup: Callable[[bool], None] | None = None) -> None:
        if size < 0:
            raise ValueError(f"size must be 0 or more, got {size}")
        self.size = size
        self.hits = 0
        self.misses = 0
        self.on_lookup = on_lookup
        """Called with ``True`` for each hit and ``False`` for each miss (the server's
        metrics count them; the memo itself knows nothing of them)."""
        self._entries: OrderedDict[MemoKey, _Entry[T]] = OrderedDict()

    def _counted(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        if self.on_lookup is not None:
            self.on_lookup(hit)

    @staticmethod
    def key(
        user_id: int,
        n: int,
        alpha: float | None,
        genres: Sequence[str] | None,
        exclude_rated: bool,
        explain_results: bool,
        *extra: Hashable,
    ) -> MemoKey:
        """The key of one ``recommend`` call's arguments (the ratings and hidden movies are
        compared apart); ``extra`` are further hashable arguments (e.g. the genre match, the
        excluded ids as a frozenset, the diversity)."""
        return (
            user_id,
            n,
            alpha,
            None if genres is None else tuple(genres),
            exclude_rated,
            explain_results,
            *extra,
        )

    def get_unchanged(self, key: MemoKey, version: int | None) -> tuple[T, ...] | None:
        """The result stored under ``key`` if the database's change counter still has the
        value its ratings were read under (never when ``version`` is ``None``). A ``None``
        answer is not a miss: read the ratings and ask :meth:`get`."""
        entry = self._entries.get(key)
        if version is None or entry is None or entry.version != version:
            return None
        self._entries.move_to_end(key)
        self._counted(True)
        return entry.result

    def get(
        self,
        key: MemoKey,
        ratings: Mapping[int, float],
        version: int | None = None,
        hidden: frozenset[int] = frozenset(),
    ) -> tuple[T, ...] | None:
        """The result stored under ``key`` if it was computed from exactly ``ratings`` and
        ``hidden``, read after the change counter was ``version`` (which the entry then
        remembers)."""
        entry = self._entries.get(key)
        if entry is None or entry.ratings != ratings or entry.hidden != hidden:
            self._counted(False)
            return None
        entry.version = version
        self._entries.move_to_end(key)
        self._counted(True)
        return entry.result

    def put(
        self,
        key: MemoKey,
        ratings: Mapping[int, float],
        result: Sequence[T],
        version: int | None = None,
        hidden: frozenset[int] = frozenset(),
    ) -> None:
        """Keep ``result``, computed from ``ratings`` and ``hidden`` read after the change
        counter was ``version`` (the caller must not change the ratings or the result)."""
        if self.size == 0:
            return
        self._entries[key] = _Entry(ratings, tuple(result), version, hidden)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
