"""IdVocab: the lookup table for compact ids and binary search for sparse ids agree."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_gql.recsys.vocab import IdVocab


@pytest.mark.parametrize(
    "ids", [np.array([0, 3, 4, 10, 193_609]), np.array([-5, 7, 10**12])], ids=["compact", "sparse"]
)
def test_rows_of_known_and_unknown_ids(ids: np.ndarray) -> None:
    vocab = IdVocab.from_values(np.r_[ids, ids[::-1]])  # duplicates and any order
    np.testing.assert_array_equal(vocab.ids, np.sort(ids))
    np.testing.assert_array_equal(vocab.indices(ids[::-1]), np.arange(ids.size)[::-1])
    queries = np.r_[ids, -1, 1, 193_610, 10**13]
    expected = [vocab.index(int(q)) for q in queries]
    assert vocab.find(queries).tolist() == [-1 if e is None else e for e in expected]
    with pytest.raises(KeyError, match="193610"):
        vocab.indices(np.r_[ids, 193_610])


def test_from_values_takes_any_iterable() -> None:
    assert IdVocab.from_values([3, 1, 3]).ids.tolist() == [1, 3]
    assert len(IdVocab.from_values(np.zeros(0, dtype=np.int64))) == 0
