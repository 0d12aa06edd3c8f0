"""A user's ratings as the arms see them: the ratings they have now, with the time of each.

The engine is given a user's *current* ratings (the API reads them from the database on every
request), without times. A rating equal to one the model was trained on keeps its training
time; any other (made through the API since, or changed) counts as made at the end of the
training data, the newest the model can know: so a rating committed a moment ago is the
user's most recent, and recency-weighted arms lean on it at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from recsys_gql.errors import ArtifactError
from recsys_gql.recsys.arm import History
from recsys_gql.recsys.vocab import IdVocab


class RatingsStore:
    """The training ratings (users x movies CSR) and their times (aligned with its data)."""

    def __init__(
        self,
        users: IdVocab,
        movies: IdVocab,
        matrix: sp.csr_matrix,
        times: npt.NDArray[np.float64],
    ) -> None:
        if times.shape != matrix.data.shape:
            raise ArtifactError("the rating times do not match the ratings")
        self.users = users
        self.movies = movies
        self.matrix = matrix
        self.times = times
        self.now = float(times.max()) if times.size else 0.0
        """The latest training time: when a rating the model has not seen counts as made."""
        # Rows without duplicate movies can be read straight from the CSR arrays.
        self._train_direct = bool(matrix.has_canonical_format)

    def training_ratings(self, user_id: int) -> dict[int, float]:
        """The ratings the model was trained on for ``user_id`` (empty for unknown users)."""
        row = self.users.index(user_id)
        if row is None:
            return {}
        start, end = self.matrix.indptr[row], self.matrix.indptr[row + 1]
        items = self.movies.ids[self.matrix.indices[start:end]].tolist()
        values = self.matrix.data[start:end].tolist()
        return dict(zip(items, values, strict=True))

    def history(self, user_id: int, ratings: Mapping[int, float] | None = None) -> History:
        """``ratings`` (by default the training ratings) as the arms see them. A rating the
        model was trained on keeps its training time; any other counts as the newest."""
        row = self.users.index(user_id)
        if row is None:
            rows, values = self._rated_rows(ratings or {})
            return History.build(rows, values, np.full(rows.size, self.now), self.now)
        start, end = self.matrix.indptr[row], self.matrix.indptr[row + 1]
        train_rows = self.matrix.indices[start:end].astype(np.int64)
        train_values = self.matrix.data[start:end]
        train_times = self.times[start:end]
        if ratings is None:
            if not self._train_direct:
                return self.history(user_id, self.training_ratings(user_id))
            finite = np.isfinite(train_values)
            return History.build(
                train_rows[finite],
                train_values[finite].astype(np.float32),
                train_times[finite],
                self.now,
            )
        rows, values = self._rated_rows(ratings)
        times = np.full(rows.size, self.now)
        if train_rows.size and rows.size and self._train_direct:
            pos = np.minimum(np.searchsorted(train_rows, rows), train_rows.size - 1)
            same = (train_rows[pos] == rows) & (train_values[pos] == values)
            times[same] = train_times[pos[same]]
        return History.build(rows, values, times, self.now)

    def _rated_rows(
        self, ratings: Mapping[int, float]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Rows and values of ``ratings`` in their order, silently dropping unknown movies and
        non-finite ratings. Integer ids with real-number ratings (the normal case) are looked up
        in one vectorised pass; anything else takes the per-item path with the same result."""
        if not ratings:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        ids = np.asarray(list(ratings.keys()))
        raw = np.asarray(list(ratings.values()))
        if ids.ndim != 1 or ids.dtype.kind != "i" or raw.ndim != 1 or raw.dtype.kind not in "biuf":
            return self._rated_rows_per_item(ratings)
        rows = self.movies.find(ids.astype(np.int64, copy=False))
        keep = rows >= 0
        if raw.dtype.kind == "f":
            keep &= np.isfinite(raw)
        values = raw[keep].astype(np.float64, copy=False).astype(np.float32)
        return rows[keep], values

    def _rated_rows_per_item(
        self, ratings: Mapping[int, float]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        rows, values = [], []
        for movie_id, rating in ratings.items():
            row = self.movies.index(movie_id)
            if row is not None and math.isfinite(rating):
                rows.append(row)
                values.append(rating)
        return np.asarray(rows, dtype=np.int64), np.asarray(values, dtype=np.float32)
