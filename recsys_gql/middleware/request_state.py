"""The keys under which a request's facts are left in the ASGI scope's ``state`` dict.

The layers that learn them write them (``request.state.<key>`` in Starlette writes
``scope["state"][key]``); middleware that wraps the app reads them after the response, so it
needs nothing from the GraphQL layer. A key that is absent was not learnt (a request that
never reached GraphQL has no operation).
"""

from __future__ import annotations

from typing import Any

from starlette.types import Scope

__all__ = ["COST", "ERROR_CODES", "OPERATION", "OPERATION_TYPE", "REQUEST_ID", "state_of"]

REQUEST_ID = "request_id"
"""``str``: the request's id (:mod:`recsys_gql.middleware.request_id`)."""
OPERATION = "graphql_operation"
"""``str | None``: the executed GraphQL operation's name (``None``: anonymous)."""
OPERATION_TYPE = "graphql_operation_type"
"""``str``: ``query``, ``mutation`` or ``subscription``."""
ERROR_CODES = "graphql_error_codes"
"""``list[str]``: the distinct ``extensions.code`` of the answer's errors, sorted."""
COST = "query_cost"
"""``int | float``: the query cost computed for the request. The hook for the query cost
limits: whatever computes the cost stores it here (``request.state.query_cost = cost``) and
the access log (and metrics) report it."""


def state_of(scope: Scope) -> dict[str, Any]:
    """The request's ``state`` dict, created when the server gave none, so that what the app
    writes into it is seen by the middleware that called the app."""
    state: dict[str, Any] = scope.setdefault("state", {})
    return state
