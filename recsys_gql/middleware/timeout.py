"""Answer 503 when a GraphQL request runs past its time limit, and set its deadline."""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recsys_gql.middleware.responses import error_body, send_json

log = logging.getLogger("recsys_gql.api")


class RequestTimeout:
    """Answers 503 (code ``TIMEOUT``) when a GraphQL request runs longer than ``seconds``, and
    cancels what it was doing.

    The deadline (``time.monotonic()``) goes into the request's ``state`` as ``deadline``,
    where the request's :class:`~recsys_gql.api.request_work.RequestWork` reads it: an engine
    call not started by then never starts, even one already queued for a thread.
    """

    def __init__(self, app: ASGIApp, seconds: float, path: str = "/graphql") -> None:
        self.app = app
        self.seconds = seconds
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        scope.setdefault("state", {})["deadline"] = time.monotonic() + self.seconds
        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            log.warning("request timed out after %.1fs", self.seconds)
            if not started:
                message = f"the request took longer than {self.seconds:g}s"
                await send_json(send, 503, error_body(message, "TIMEOUT"))
