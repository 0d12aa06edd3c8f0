"""Mapping between external ids (MovieLens movieId / userId) and matrix row indices."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt


class IdVocab:
    """A bijection between sorted, unique int64 external ids and row indices 0..n-1.

    Stored as one ``.npy`` array of ids (row ``i`` has id ``ids[i]``), so it needs no pickle.
    """

    def __init__(self, ids: npt.NDArray[np.int64]) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1:
            raise ValueError("ids must be one-dimensional")
        if ids.size > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            raise ValueError("ids must be sorted and unique")
        self.ids = ids
        self._index = {int(v): i for i, v in enumerate(ids.tolist())}
        self._table: npt.NDArray[np.int64] | None = None
        # Compact ids (MovieLens' are) get a direct lookup table: one gather per batch instead
        # of a binary search, which matters for 25M ratings.
        if ids.size and ids[0] >= 0 and int(ids[-1]) < 4 * ids.size + 1_000_000:
            self._table = np.full(int(ids[-1]) + 1, -1, dtype=np.int64)
            self._table[ids] = np.arange(ids.size, dtype=np.int64)

    @classmethod
    def from_values(cls, values: Iterable[int] | npt.NDArray[np.int64]) -> IdVocab:
        """Build a vocabulary from any collection of ids (duplicates allowed)."""
        if isinstance(values, np.ndarray):
            return cls(np.unique(values.astype(np.int64, copy=False)))
        return cls(np.unique(np.fromiter((int(v) for v in values), dtype=np.int64)))

    def __len__(self) -> int:
        return int(self.ids.size)

    def __contains__(self, external_id: object) -> bool:
        return isinstance(external_id, int | np.integer) and int(external_id) in self._index

    def index(self, external_id: int) -> int | None:
        """The row of ``external_id``, or ``None`` when it is unknown."""
        return self._index.get(int(external_id))

    def indices(self, external_ids: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Rows of many ids at once; raises ``KeyError`` naming the first unknown id."""
        values = np.asarray(external_ids, dtype=np.int64)
        rows = self.find(values)
        bad = rows < 0
        if bool(np.any(bad)):
            raise KeyError(int(values[np.argmax(bad)]))
        return rows

    def find(self, external_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Rows of many int64 ids at once, ``-1`` for each unknown id (never raises)."""
        values = np.asarray(external_ids, dtype=np.int64)
        if not len(self):
            return np.full(values.shape, -1, dtype=np.int64)
        if self._table is not None:
            inside = (values >= 0) & (values < self._table.size)
            found = self._table[np.where(inside, values, 0)]
            return np.where(inside, found, -1)
        rows = np.searchsorted(self.ids, values)
        np.minimum(rows, len(self) - 1, out=rows)
        return np.where(self.ids[rows] == values, rows, -1).astype(np.int64, copy=False)

    def id_of(self, row: int) -> int:
        """The external id of a row."""
        return int(self.ids[row])
