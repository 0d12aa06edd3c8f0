"""Count and time every HTTP request for Prometheus (:mod:`recsys_gql.metrics.registry`).

A request is labelled by its route (one of the app's own paths, else ``other``, so a scan of
random URLs adds no series), its GraphQL operation's name (``-`` off GraphQL; names are
bounded per process) and its outcome: ``ok``, ``error`` (2xx with GraphQL errors),
``client_error`` (4xx, a rate-limit refusal included) or ``server_error`` (5xx, or a crash
before any answer). Each distinct ``extensions.code`` of an answer counts once in
``recsys_gql_graphql_errors_total``. The facts come from the scope's state, where the GraphQL
layer left them for the access log (:mod:`.request_state`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from recsys_gql.metrics.registry import (
    GRAPHQL_ERRORS,
    REQUEST_SECONDS,
    REQUESTS,
    operation_label,
)
from recsys_gql.middleware.request_state import ERROR_CODES, OPERATION, OPERATION_TYPE, state_of
from recsys_gql.middleware.timed_response import call_timed

__all__ = ["ROUTES", "RequestMetrics", "outcome"]

ROUTES = frozenset({"/graphql", "/healthz", "/readyz", "/stats", "/metrics", "/"})
"""Paths labelled as themselves; every other path is ``other``."""


def outcome(status: int, has_errors: bool) -> str:
    """The ``outcome`` label of an answer with HTTP ``status``."""
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "error" if has_errors else "ok"


class RequestMetrics:
    """The middleware (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await call_timed(
            self.app, scope, receive, send, lambda status, seconds: _record(scope, status, seconds)
        )


def _record(scope: Scope, status: int, seconds: float) -> None:
    state = state_of(scope)
    path = scope["path"]
    route = path if path in ROUTES else "other"
    codes: list[str] = state.get(ERROR_CODES, [])
    operation = operation_label(state.get(OPERATION)) if OPERATION_TYPE in state else "-"
    labels = (route, operation, outcome(status, bool(codes)))
    REQUESTS.labels(*labels).inc()
    REQUEST_SECONDS.labels(*labels).observe(seconds)
    for code in codes:
        GRAPHQL_ERRORS.labels(code).inc()
