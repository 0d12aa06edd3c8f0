"""The ``Subscription`` root type: thin resolvers over :mod:`.updates`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import strawberry

from recsys_gql.api.context import Info
from recsys_gql.api.cost import Cost, ListSize
from recsys_gql.api.live.updates import recommendation_updates
from recsys_gql.api.types import W_RECOMMENDATIONS, Recommendation


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
        async for recommendations in recommendation_updates(info, first, alpha, genres):
            yield recommendations
