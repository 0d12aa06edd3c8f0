"""The arguments ``recommendations`` takes beyond paging and the blend, shared by
``Query.recommendations`` and ``User.recommendations``: ``genreMatch`` (the engine's
:class:`~recsys_gql.recsys.filters.GenreMatch`, registered here as the GraphQL enum),
``excludeMovieIds`` and ``diversity``."""

from __future__ import annotations

import strawberry

from recsys_gql.recsys.diversity import DEFAULT_DIVERSITY
from recsys_gql.recsys.filters import MAX_EXCLUDED, GenreMatch

__all__ = ["DIVERSITY", "EXCLUDE_MOVIE_IDS", "GenreMatch"]

strawberry.enum(  # registers the engine's enum itself as the GraphQL type
    GenreMatch,
    name="GenreMatch",
    description="How several `genres` filter: movies of at least one (ANY, the default) or "
    "of every one (ALL).",
)

EXCLUDE_MOVIE_IDS = strawberry.argument(
    description=f"Movies never to return, e.g. those already shown (at most {MAX_EXCLUDED}; "
    "unknown ids are ignored). The user's hidden movies (`hideMovie`) are always left out."
)
DIVERSITY = strawberry.argument(
    description="0-1: re-rank by maximal marginal relevance over the movie embeddings, 0 for "
    f"pure relevance, 1 for most varied (default {DEFAULT_DIVERSITY}, chosen from the "
    "evaluation report's NDCG@10-vs-diversity curve)."
)
