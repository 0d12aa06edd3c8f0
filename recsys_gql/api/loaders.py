"""Per-request DataLoaders: a query touching twenty movies resolves them in one batch.

Movies come from the catalog loaded once at start-up (it cannot change while the server runs:
``/readyz`` checks the database still holds the dataset the model was trained on); ratings and
rating statistics, which change with every ``rateMovie``, are read from the database, one
query per batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from recsys_gql.db.hot_reads import HotReads
from recsys_gql.db.models import MovieRecord

MovieStats = tuple[int, float | None]
K = TypeVar("K")
V = TypeVar("V")


async def load(loader: DataLoader[K, V], key: K) -> V:
    """``loader.load(key)`` shielded from cancellation.

    Requests for the same key share one future. When graphql-core cancels a resolver (a sibling
    field failed), an unshielded await would cancel that shared future too, and every other
    resolver waiting on it would fail with ``CancelledError`` — which escapes error handling as
    a 500.
    """
    return await asyncio.shield(loader.load(key))


def _forget(loader: DataLoader[int, Any], key: int) -> None:
    with suppress(KeyError):  # strawberry raises when the key was never loaded
        loader.clear(key)


@dataclass(frozen=True)
class Loaders:
    """The loaders of one request (never shared between requests, so never stale)."""

    movie: DataLoader[int, MovieRecord | None]
    movie_stats: DataLoader[int, MovieStats]
    user_ratings: DataLoader[int, dict[int, float]]

    def forget_user(self, user_id: int) -> None:
        """Drop what this request cached about a user whose ratings just changed."""
        _forget(self.user_ratings, user_id)

    def forget_movie_stats(self, movie_id: int) -> None:
        """Drop the cached rating count and mean of a movie just rated."""
        _forget(self.movie_stats, movie_id)

    @classmethod
    def create(cls, reads: HotReads, catalog: Mapping[int, MovieRecord]) -> Loaders:
        """Fresh loaders: movies from the in-memory ``catalog``, the rest through the
        database's hot-path ``reads``."""

        async def movies(ids: Sequence[int]) -> list[MovieRecord | None]:
            return [catalog.get(i) for i in ids]

        async def stats(ids: Sequence[int]) -> list[MovieStats]:
            found = await reads.rating_stats(ids)
            return [found.get(i, (0, None)) for i in ids]

        async def ratings(ids: Sequence[int]) -> list[dict[int, float]]:
            found = await reads.ratings_of_users(ids)
            return [found.get(i, {}) for i in ids]

        return cls(
            movie=DataLoader(load_fn=movies),
            movie_stats=DataLoader(load_fn=stats),
            user_ratings=DataLoader(load_fn=ratings),
        )
