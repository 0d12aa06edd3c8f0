"""The cost weights (``@cost``) of engine- and database-backed fields, in cost units.

One unit is the price of resolving one object. The weights come from the per-call CPU that
``python -m bench.query_cost`` measures (its ``weights`` in bench/results/query_cost.json;
tests/api/test_query_cost.py holds these to them). A field costs its weight per call; see
:mod:`recsys_gql.api.cost`.
"""

from __future__ import annotations

W_RECOMMENDATIONS = 170
"""``recommend`` for one user: fold-in, both arms, ranking (the heaviest users cost more)."""
W_EXPLANATION = 7
"""One result's explanation (the engine's contributions are summed with the ranking)."""
W_SIMILAR = 5
"""Nearest movies: a content-graph lookup up to 50, an index search beyond (the weight: the
price of the costlier way)."""
W_SEARCH = 180
"""Encoding the query with the sentence model, then the index search."""
W_POPULAR = 5
"""The Bayesian-average ranking, filtered by genre."""
W_MOVIES = 170
"""A filtered, counted page of the catalog from the database."""
W_MOVIE_STATS = 3
"""A movie's rating count and mean: one batched aggregate per request, per movie."""
W_USER_RATINGS = 6
"""A user's current ratings (batched per request)."""
W_RATINGS_PAGE = 90
"""A counted page of a user's ratings from the database."""
W_HEALTH = 55
"""A database round trip."""
W_RATE_MOVIE = 9
"""One rating upserted (group-committed)."""
W_SIGN_UP = 130
"""A user and a token written in one transaction."""

W_FEEDBACK = 90
"""``hideMovie`` / ``unhideMovie``: one short write transaction (a row inserted or deleted),
measured by ``python -m bench.query_cost`` (its ``hide_movie`` probe) like the other weights:
less than ``signUp``'s user and token, far more than ``rateMovie``'s group-committed upsert."""
