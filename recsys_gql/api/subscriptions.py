"""Subscription resolvers (thin): the viewer's recommendations, live.

The updates themselves (when to recompute, the viewer's token, the per-user cap) come from
:mod:`recsys_gql.api.live.updates` as engine results; here they become GraphQL types, as
``Query.recommendations`` makes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import strawberry

from recsys_gql.api.context import Info
from recsys_gql.api.cost import Cost, ListSize
from recsys_gql.api.live.updates import recommendation_updates
from recsys_gql.api.selection import asks_for
from recsys_gql.api.types import Recommendation
from recsys_gql.api.weights import W_RECOMMENDATIONS


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The signed-in viewer's recommendations: the current list at once, then "
        "a new list each time the viewer's ratings or feedback change (on any replica); "
        "`alpha` and `genres` as on `recommendations`. Over "
        'WebSocket (graphql-transport-ws) with {"Authorization": "Bearer <token>"} in '
        "connection_init.",
        directives=[Cost(weight=W_RECOMMENDATIONS), ListSize(slicing_arguments=["first"])],
    )
    async def recommendations_updated(
        self,
        info: Info,
        first: int = 10,
        alpha: float | None = None,
        genres: list[str] | None = None,
    ) -> AsyncIterator[list[Recommendation]]:
        updates = recommendation_updates(
            info.context,
            first=first,
            alpha=alpha,
            genres=genres,
            explain=asks_for(info, "explanation"),
        )
        async for recs in updates:
            yield [Recommendation.from_engine(info, rec) for rec in recs]
