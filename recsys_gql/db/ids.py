"""Id lists for ``IN (…)`` queries: deduplicated in order, then cut into bounded chunks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def unique(ids: Iterable[int]) -> list[int]:
    """``ids`` as ints, each once, in first-seen order."""
    return list(dict.fromkeys(int(i) for i in ids))


def chunks(ids: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    """Consecutive slices of at most ``size`` ids."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
