"""Strawberry's ``graphql-transport-ws`` handler with a keep-alive.

Once a connection is acknowledged, every ``ws_keep_alive_seconds`` the server checks the
connection's token and sends a protocol ``ping`` (clients answer ``pong``): proxies see
traffic on an idle connection, a vanished client shows up as a failed send (the handler then
ends and cancels its operations), and a connection whose token was revoked is closed with
4403 (Forbidden), which clients must not retry with the same token.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage

from recsys_gql.api.context import Context
from recsys_gql.api.live.connection import still_signed_in

log = logging.getLogger("recsys_gql.api.live")

REVOKED = 4403
"""The close code of a connection whose token is no longer live (graphql-ws: Forbidden)."""


class LiveTransportHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """See the module docstring."""

    _keep_alive: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self._keep_alive is None:
            self._keep_alive = asyncio.create_task(self._keep_alive_loop())

    async def _keep_alive_loop(self) -> None:
        context = self.context
        interval = context.settings.ws_keep_alive_seconds
        try:
            while True:
                await asyncio.sleep(interval)
                if not await still_signed_in(context):
                    await close_revoked(self.websocket)
                    return
                await self.send_message({"type": "ping"})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a send to a vanished client: the handler ends on its own
            log.debug("keep-alive stopped: %s", exc)

    async def shutdown(self) -> None:
        if self._keep_alive is not None:
            self._keep_alive.cancel()
            with suppress(asyncio.CancelledError):
                await self._keep_alive
        await super().shutdown()


async def close_revoked(websocket: object) -> None:
    """Close a connection whose token was revoked (4403); quiet if it is already closed."""
    close = getattr(websocket, "close", None)
    if close is not None:
        with suppress(Exception):
            await close(code=REVOKED, reason="Forbidden: the token was revoked")
