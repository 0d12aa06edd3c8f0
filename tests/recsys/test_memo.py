"""The recommendation memo returns a stored result only for the very ratings it came from."""

from __future__ import annotations

import pytest

from recsys_gql.recsys.engine import Recommendation
from recsys_gql.recsys.memo import RecommendationMemo

RATINGS = {1: 4.0, 2: 5.0, 3: 2.5}


def result(movie_id: int) -> list[Recommendation]:
    return [Recommendation(movie_id=movie_id, score=1.0, collab_score=1.0, content_score=0.0)]


def key(user_id: int = 7, n: int = 10, alpha: float | None = None) -> tuple[object, ...]:
    return RecommendationMemo.key(user_id, n, alpha, None, True, False)


def test_a_hit_needs_the_same_arguments_and_exactly_the_same_ratings() -> None:
    memo = RecommendationMemo(8)
    memo.put(key(), RATINGS, result(10))
    assert memo.get(key(), dict(RATINGS)) == tuple(result(10))  # an equal copy, as read anew
    assert memo.get(key(), {**RATINGS, 2: 4.5}) is None  # a re-rating
    assert memo.get(key(), {**RATINGS, 4: 3.0}) is None  # a new rating
    assert memo.get(key(), {1: 4.0, 2: 5.0}) is None  # a deleted one
    assert memo.get(key(user_id=8), RATINGS) is None
    assert memo.get(key(n=20), RATINGS) is None
    assert memo.get(key(alpha=0.5), RATINGS) is None
    genres = RecommendationMemo.key(7, 10, None, ["Comedy"], True, False)
    assert memo.get(genres, RATINGS) is None
    assert (memo.hits, memo.misses) == (1, 7)


def test_the_least_recently_used_entry_goes_first() -> None:
    memo = RecommendationMemo(2)
    memo.put(key(user_id=1), RATINGS, result(1))
    memo.put(key(user_id=2), RATINGS, result(2))
    assert memo.get(key(user_id=1), RATINGS) is not None  # 1 is now the most recent
    memo.put(key(user_id=3), RATINGS, result(3))
    assert len(memo) == 2
    assert memo.get(key(user_id=2), RATINGS) is None
    assert memo.get(key(user_id=1), RATINGS) == tuple(result(1))
    assert memo.get(key(user_id=3), RATINGS) == tuple(result(3))


def test_a_newer_result_replaces_the_older_one() -> None:
    memo = RecommendationMemo(2)
    memo.put(key(), RATINGS, result(1))
    changed = {**RATINGS, 9: 5.0}
    memo.put(key(), changed, result(2))
    assert len(memo) == 1
    assert memo.get(key(), changed) == tuple(result(2))
    assert memo.get(key(), RATINGS) is None


def test_size_zero_keeps_nothing_and_a_negative_size_is_refused() -> None:
    memo = RecommendationMemo(0)
    memo.put(key(), RATINGS, result(1))
    assert len(memo) == 0
    assert memo.get(key(), RATINGS) is None
    with pytest.raises(ValueError, match="0 or more"):
        RecommendationMemo(-1)


def test_an_unchanged_database_answers_without_the_ratings() -> None:
    memo = RecommendationMemo(8)
    memo.put(key(), RATINGS, result(1), version=41)
    assert memo.get_unchanged(key(), 41) == tuple(result(1))
    assert memo.get_unchanged(key(), 42) is None  # something was committed since
    assert memo.get_unchanged(key(), None) is None  # a backend without a counter
    assert memo.get_unchanged(key(user_id=8), 41) is None
    # read again under 42 and found equal: the entry now vouches for 42
    assert memo.get(key(), dict(RATINGS), version=42) == tuple(result(1))
    assert memo.get_unchanged(key(), 42) == tuple(result(1))
    assert memo.get_unchanged(key(), 41) is None
    assert (memo.hits, memo.misses) == (3, 0)


def test_every_hit_and_miss_is_told_to_the_callback() -> None:
    heard: list[bool] = []
    memo: RecommendationMemo[Recommendation] = RecommendationMemo(8, on_lookup=heard.append)
    assert memo.get(key(), RATINGS) is None  # miss
    memo.put(key(), RATINGS, result(1), version=3)
    assert memo.get(key(), RATINGS, 3) is not None  # hit, read under change counter 3
    assert memo.get_unchanged(key(), 3) is not None  # hit without reading the ratings
    assert memo.get_unchanged(key(), 4) is None  # neither: the ratings must be read
    assert memo.get(key(), {**RATINGS, 9: 1.0}) is None  # miss
    assert heard == [False, True, True, False]
    assert (memo.hits, memo.misses) == (2, 2)


def test_a_hit_needs_the_same_hidden_movies_and_list_controls() -> None:
    memo = RecommendationMemo(8)
    memo.put(key(), RATINGS, result(10), hidden=frozenset({5}))
    assert memo.get(key(), RATINGS, hidden=frozenset({5})) == tuple(result(10))
    assert memo.get(key(), RATINGS, hidden=frozenset({5, 6})) is None  # a hide since
    assert memo.get(key(), RATINGS) is None  # an unhide since
    base = (7, 10, None, None, True, False)
    controls = RecommendationMemo.key(*base, "any", frozenset({1}), 0.0)
    memo.put(controls, RATINGS, result(11))
    assert memo.get(controls, RATINGS) == tuple(result(11))
    assert memo.get(RecommendationMemo.key(*base, "all", frozenset({1}), 0.0), RATINGS) is None
    assert memo.get(RecommendationMemo.key(*base, "any", frozenset(), 0.0), RATINGS) is None
    assert memo.get(RecommendationMemo.key(*base, "any", frozenset({1}), 0.3), RATINGS) is None
