"""Running the wrapped app while noting the response's status and how long it took: what the
access log and the request metrics both report once the request is over."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["call_timed"]


async def call_timed(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    report: Callable[[int, float], None],
) -> None:
    """``app(scope, receive, send)``, then ``report(status, seconds)`` even when the app
    raised (status 500 when it had not started a response: what the server then answers)."""
    started = time.perf_counter()
    status = 500

    async def send_noting_status(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    try:
        await app(scope, receive, send_noting_status)
    finally:
        report(status, time.perf_counter() - started)
