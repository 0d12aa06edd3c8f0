"""Give every request an id: the client's (or proxy's) ``X-Request-ID`` when it is sane, else
a new random one; return it in the response's ``X-Request-ID`` header, leave it in the scope's
state, and attach it to every log record made while the request is served.

"Sane" is 1-128 characters among letters, digits and ``. _ : / + = -``: enough for UUIDs,
W3C trace ids and the ids proxies generate, and nothing that could break a log line or a
header. Anything else is replaced, not trusted: the id is written into every log line.
"""

from __future__ import annotations

import logging
import os
import re
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recsys_gql.middleware.request_state import REQUEST_ID, state_of

__all__ = ["HEADER", "RequestId", "RequestIdFilter", "current_request_id", "sane_request_id"]

HEADER = b"x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_current: ContextVar[str | None] = ContextVar("recsys_gql_request_id", default=None)


def sane_request_id(value: bytes | None) -> str:
    """``value`` when it is a sane id (see the module docstring), else a new random one."""
    if value is not None:
        text = value.decode("latin-1")
        if _SANE.fullmatch(text):
            return text
    return os.urandom(16).hex()  # uuid4's randomness, without building a UUID object


def current_request_id() -> str | None:
    """The id of the request being served by this task (``None`` outside a request)."""
    return _current.get()


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (the current request's, or ``None``) to every record it sees; set
    on the log handlers so that a crash's traceback can be matched with its request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _current.get()
        return True


class RequestId:
    """The middleware (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == HEADER), None)
        request_id = sane_request_id(given)
        state_of(scope)[REQUEST_ID] = request_id
        header = (HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = _current.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _current.reset(token)
