"""The feedback service's plain parts: the bound on excluded ids, and dropping hidden hits
while keeping the page full."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from recsys_gql.api.feedback import (
    check_excluded,
    widened,
    without_hidden,
)
from recsys_gql.errors import InvalidArgument
from recsys_gql.recsys.filters import MAX_EXCLUDED


@dataclass(frozen=True)
class Hit:
    movie_id: int


def test_excluded_ids_are_bounded() -> None:
    assert check_excluded(None) == frozenset()
    assert check_excluded([3, 3, 4]) == {3, 4}
    assert len(check_excluded(list(range(MAX_EXCLUDED)))) == MAX_EXCLUDED
    with pytest.raises(InvalidArgument, match=f"at most {MAX_EXCLUDED}") as refused:
        check_excluded(list(range(MAX_EXCLUDED + 1)))
    assert refused.value.field == "excludeMovieIds"


def test_hidden_hits_are_dropped_and_the_page_stays_full() -> None:
    hidden = frozenset({2, 4})
    asked = widened(3, hidden, most=100)
    assert asked == 5
    hits = [Hit(m) for m in range(1, asked + 1)]
    assert without_hidden(hits, hidden, 3) == [Hit(1), Hit(3), Hit(5)]
    assert widened(99, hidden, most=100) == 100  # never past the engine's limit
