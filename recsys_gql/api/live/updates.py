"""The viewer's recommendations now, then again each time the viewer's data changes.

A subscription holds a :class:`~recsys_gql.events.local.Watch` on its viewer for as long as
it runs (at most ``max_subscriptions_per_user`` per user and process) and leaves it when the
client completes it or goes away: the generator is closed and its ``with`` block ends. Each
update is computed like a ``recommendations`` query (memo, deadline, threads), with fresh
per-request state; changes that arrive meanwhile fold into the next update. Before each
update the token is checked again: a revoked one ends the connection with 4403.

Engine results come out, as from the services; the resolver
(:mod:`recsys_gql.api.subscriptions`) maps them to GraphQL types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.websockets import WebSocket

from recsys_gql.api.context import Context
from recsys_gql.api.live.connection import renew, still_signed_in
from recsys_gql.api.live.transport import close_revoked
from recsys_gql.api.types import engine_recommendations
from recsys_gql.errors import RecsysError
from recsys_gql.recsys.engine import Recommendation

NEEDS_WEBSOCKET = (
    "subscribe over a WebSocket at /graphql (graphql-transport-ws) with "
    '{"Authorization": "Bearer <token>"} in connection_init'
)


class NeedsWebSocket(RecsysError):
    """Subscriptions run over a WebSocket (graphql-transport-ws), not HTTP."""

    code = "SUBSCRIPTION_NEEDS_WEBSOCKET"


async def recommendation_updates(
    context: Context,
    *,
    first: int,
    alpha: float | None,
    genres: list[str] | None,
    explain: bool,
) -> AsyncIterator[list[Recommendation]]:
    """See the module docstring."""
    websocket = context.request
    if not isinstance(websocket, WebSocket) or context.viewer_id is None:
        raise NeedsWebSocket(NEEDS_WEBSOCKET)
    viewer = context.viewer_id
    limit = context.settings.max_subscriptions_per_user
    with context.user_changes.watch(viewer, limit) as watch:
        while True:
            renew(context)
            yield await engine_recommendations(
                context, viewer, first, alpha, genres, exclude_rated=True, explain=explain
            )
            await watch.wait()
            if not await still_signed_in(context):
                await close_revoked(websocket)
                return
