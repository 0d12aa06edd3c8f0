"""What the GraphQL layer tells the middleware about a request: the executed operation's name
and type and the distinct error codes of its answer, left in the ASGI scope's state
(:mod:`recsys_gql.middleware.request_state`) for the access log and metrics."""

from __future__ import annotations

import re

from strawberry.types import ExecutionContext

from recsys_gql.middleware.request_state import (
    ERROR_CODES,
    OPERATION,
    OPERATION_TYPE,
    state_of,
)

__all__ = ["note_operation"]

_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")
"""A GraphQL name, at most 100 characters: a client's ``operationName`` is free text."""


def note_operation(execution: ExecutionContext, codes: list[str]) -> None:
    """Record the operation of ``execution`` and its answer's error ``codes`` on the request
    (nothing when the operation runs without one, as in direct ``schema.execute`` calls)."""
    request = getattr(execution.context, "request", None)
    if request is None:
        return
    state = state_of(request.scope)
    if codes:
        state[ERROR_CODES] = sorted(set(codes))
    if execution.graphql_document is None:  # it did not parse: there is no operation
        return
    name = execution.operation_name
    try:
        kind = execution.operation_type.value
    except RuntimeError:  # no operation of that name in the document
        return
    state[OPERATION] = name if name is None or _NAME.fullmatch(name) else "(invalid name)"
    state[OPERATION_TYPE] = kind
