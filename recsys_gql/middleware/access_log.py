"""One log line per request, on the ``recsys_gql.access`` logger: JSON in production, text in
development (the handlers' formatter decides: :mod:`recsys_gql.logs`).

Each line has the request id, method, path, status, duration in milliseconds, and — when the
request reached GraphQL — the operation's name and type, the distinct error codes and the
query cost (read from the scope's state: :mod:`.request_state`). Nothing else: no query
string (a GET request's carries the query and its variables), no headers (``Authorization``
holds a token), no client address, no query text or variables. Health probes (``/healthz``,
``/readyz``) are logged at DEBUG, so an orchestrator polling them does not flood the log.

uvicorn's own access log is switched off by ``recsys-gql serve``: this line says everything it
said except the client address, and more.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from recsys_gql.middleware.request_state import (
    COST,
    ERROR_CODES,
    OPERATION,
    OPERATION_TYPE,
    REQUEST_ID,
    state_of,
)
from recsys_gql.middleware.timed_response import call_timed

__all__ = ["PROBES", "AccessLog"]

PROBES = frozenset({"/healthz", "/readyz"})
"""Paths logged at DEBUG rather than INFO."""


class AccessLog:
    """The middleware (see the module docstring); put it inside :class:`RequestId`."""

    def __init__(self, app: ASGIApp, logger: logging.Logger | None = None) -> None:
        self.app = app
        self.log = logger or logging.getLogger("recsys_gql.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        level = logging.DEBUG if scope["path"] in PROBES else logging.INFO
        if not self.log.isEnabledFor(level):
            await self.app(scope, receive, send)
            return
        await call_timed(
            self.app,
            scope,
            receive,
            send,
            lambda status, seconds: self._log(level, scope, status, seconds * 1000),
        )

    def _log(self, level: int, scope: Scope, status: int, ms: float) -> None:
        state = state_of(scope)
        fields: dict[str, Any] = {
            "request_id": state.get(REQUEST_ID),
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": round(ms, 2),
        }
        graphql = ""
        if OPERATION_TYPE in state:
            fields["operation"] = state.get(OPERATION)
            fields["operation_type"] = state[OPERATION_TYPE]
            graphql = f" {state[OPERATION_TYPE]} {state.get(OPERATION) or '(anonymous)'}"
        if ERROR_CODES in state:
            fields["error_codes"] = state[ERROR_CODES]
            graphql += f" errors {','.join(state[ERROR_CODES])}"
        if COST in state:
            fields["cost"] = state[COST]
            graphql += f" cost {state[COST]}"
        # The record is made here rather than by ``Logger.log``, whose search of the stack for
        # the caller's file and line (meaningless for this line) cost about a tenth of it.
        record = self.log.makeRecord(
            self.log.name,
            level,
            __file__,
            0,
            "%s %s %d %.1fms%s id=%s",
            (scope["method"], scope["path"], status, ms, graphql, fields["request_id"]),
            None,
            extra=fields,
        )
        self.log.handle(record)
